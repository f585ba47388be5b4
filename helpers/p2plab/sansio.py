"""The shape every p2plab protocol has: bytes and time in, bytes, timers and events out.

Like h11 or aioice, a protocol object never touches a socket or a clock. A *driver* feeds it:

* ``datagram_received(data, addr, now)`` when a datagram arrives,
* ``handle_timer(now)`` when the time ``next_timer()`` asked for has come,

and after each call collects ``datagrams_to_send()`` (a list of ``(bytes, (ip, port))``) and
``events()`` (what happened: a mapped address learned, a peer connected, a failure with its
reason). The same object therefore runs in the simulator (``p2plab.sim``), over real asyncio
sockets (``p2plab.aio``) and inside the real Linux lab (``p2plab.netns``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

Addr = tuple[str, int]


@dataclass
class Event:
    """Something a protocol wants its user to know. ``kind`` names it; ``data`` holds details."""

    kind: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None


class DatagramProtocol:
    """Base class of sans-I/O protocols: keeps an outbox, an event list and timers."""

    def __init__(self) -> None:
        self._outbox: list[tuple[bytes, Addr]] = []
        self._events: list[Event] = []
        self._timers: list[tuple[float, int, str]] = []
        self._timer_seq = 0
        self._cancelled: set[int] = set()
        self.now = 0.0
        self.local_addr: Addr | None = None

    # -- called by drivers ------------------------------------------------------------
    def start(self, now: float, local_addr: Addr | None = None) -> None:
        """Called once by the driver when the socket is bound."""
        self.now = now
        self.local_addr = local_addr

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one received datagram."""
        self.now = now

    def next_timer(self) -> float | None:
        """The absolute time at which ``handle_timer`` must be called next, or None."""
        timers = self._timers
        while timers and timers[0][1] in self._cancelled:
            self._cancelled.discard(heapq.heappop(timers)[1])
        return timers[0][0] if timers else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer that is due."""
        self.now = now
        timers = self._timers
        while timers and timers[0][0] <= now + 1e-12:
            _, seq, name = heapq.heappop(timers)
            if seq in self._cancelled:
                self._cancelled.discard(seq)
                continue
            self.on_timer(name, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Drain the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[Event]:
        """Drain the events."""
        out, self._events = self._events, []
        return out

    # -- used by subclasses -------------------------------------------------------------
    def send(self, data: bytes, addr: Addr) -> None:
        """Queue ``data`` for ``addr``."""
        self._outbox.append((data if type(data) is bytes else bytes(data), (addr[0], int(addr[1]))))

    def emit(self, kind: str, **data: Any) -> Event:
        ev = Event(kind, self.now, data)
        self._events.append(ev)
        return ev

    def set_timer(self, at: float, name: str) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at, self._timer_seq, name))

    def cancel_timers(self, name: str | None = None) -> None:
        """Cancel the pending timers called ``name`` (all timers when name is None)."""
        for _, seq, tname in self._timers:
            if name is None or tname == name:
                self._cancelled.add(seq)

    def on_timer(self, name: str, now: float) -> None:
        """Override: a timer set with ``set_timer(at, name)`` fired."""
