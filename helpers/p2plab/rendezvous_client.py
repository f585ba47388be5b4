"""What every client of the course's rendezvous servers does first: register, and read text messages.

The hole punching peer (``p2plab.punch.PunchPeer``), the connection reversal peer
(``p2plab.reversal.ReversalPeer``) and the authenticating peer of the peer-auth scenario
(``p2plab.scenarios.peer_auth.AuthPeer``) all start the same way: send ``REGISTER`` to the server
from the socket they will use for the peer, and send it again every few seconds until the server
answers. They also read their messages the same way, with a ``p2plab.textmsg.TextMessages`` codec.
``RendezvousClient`` does both; a subclass says what to register and what to do with each message:

* ``messages`` (class attribute): the protocol's ``TextMessages`` codec;
* ``register_fields()``: the fields after ``REGISTER`` (default: name and local endpoint);
* ``register_retry()``: seconds until ``REGISTER`` is sent again (default 1.0);
* ``message_received(kind, fields, addr)``: one decoded message;
* ``other_datagram(data, addr)``: bytes that are not a message of this protocol (default: ignored).

The subclass stops the retries itself, when the server's answer arrives:
``self.cancel_timers("register")`` and a ``state`` other than ``"registering"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .addresses import fmt
from .sansio import Addr, DatagramProtocol
from .textmsg import TextMessages


class RendezvousClient(DatagramProtocol):
    """Registers ``name`` with the rendezvous ``server`` (retrying) and dispatches decoded messages."""

    messages: ClassVar[TextMessages]

    def __init__(self, name: str, server: Addr) -> None:
        super().__init__()
        self.name = name
        self.server = server
        self.state = "new"

    # -- what a subclass chooses -----------------------------------------------------------------
    def register_fields(self) -> tuple[str, ...]:
        """The fields of the ``REGISTER`` message: this peer's name and the endpoint it reports."""
        ip, port = self.local_addr or ("0.0.0.0", 0)
        return (self.name, fmt((ip, port)))

    def register_retry(self) -> float:
        """Seconds to wait for the server's answer before registering again."""
        return 1.0

    def message_received(self, kind: str, fields: list[str], addr: Addr) -> None:
        """One message of this protocol arrived from ``addr`` (``self.now`` is its arrival time)."""

    def other_datagram(self, data: bytes, addr: Addr) -> None:
        """A datagram that is not a message of this protocol arrived; ignored unless overridden."""

    # -- the shared steps -----------------------------------------------------------------------
    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self.state = "registering"
        self._register()

    def _register(self) -> None:
        self.send(self.messages.encode("REGISTER", *self.register_fields()), self.server)
        self.set_timer(self.now + self.register_retry(), "register")

    def on_timer(self, name: str, now: float) -> None:
        if name == "register" and self.state == "registering":
            self._register()

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        msg = self.messages.decode(data)
        if msg is None:
            self.other_datagram(data, addr)
            return
        kind, fields = msg
        self.message_received(kind, fields, addr)


__all__ = ["RendezvousClient"]
