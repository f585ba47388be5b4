"""``IceDriver``: an ``aio.Driver`` for an ``IceAgent`` that may reach its TURN server over TCP or TLS.

The agent is sans-I/O: what it sends to a TURN server over a stream is addressed to a
``p2plab.turn.stream.StreamClient`` (an ``(ip, port)`` that also says "tcp" or "tls"). This driver
sends everything else from the agent's UDP socket, as ``aio.Driver`` does, and for a stream
address it

* opens the connection on the first message (TLS: verified against ``cafile``, e.g. the lab
  certificate from ``p2plab.turn.stream.lab_certificate``), queueing messages until it is up;
* frames what it writes (``frame_for_stream``: ChannelData padded to 4 bytes) and cuts what it
  reads into messages (``StreamFramer``), which go to the agent with the same ``StreamClient``
  address they were sent to;
* tells the agent ``stream_failed(addr, why)`` when the connection cannot be made within
  ``connect_timeout`` seconds (a firewall that drops the SYN), is refused, fails its TLS
  handshake, carries bytes that are not TURN, or closes. The agent then tries its next TURN server.

>>> # async with IceDriver(agent, ("192.168.1.10", 5000), cafile=cert) as d: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..addresses import fmt
from ..aio import Driver
from ..errors import StunParseError
from ..sansio import Addr, DatagramProtocol, Event
from ..turn.stream import StreamClient, client_ssl_context, frame_for_stream, pump_frames

log = logging.getLogger("p2plab.ice.streams")

CONNECT_TIMEOUT = 3.0  # seconds to wait for a TCP connection (and TLS handshake) before giving up


@dataclass
class _Connection:
    dest: StreamClient
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)
    failed: str | None = None
    task: asyncio.Task | None = None
    opened_at: float | None = None
    connected_at: float | None = None


class IceDriver(Driver):
    """Runs an ``IceAgent`` on a UDP socket plus the TCP/TLS connections its TURN servers need.

    ``connections`` records each connection tried: transport, server, when it was opened, how long
    it took (or why it failed) - the cost of falling back from UDP shows there."""

    def __init__(self, protocol: DatagramProtocol, local_addr: Addr, *, cafile: str | Path | None = None,
                 ssl_context: ssl.SSLContext | None = None, connect_timeout: float = CONNECT_TIMEOUT,
                 on_event: Callable[[Event], None] | None = None) -> None:
        super().__init__(protocol, local_addr, on_event)
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._cafile = cafile
        self._conns: dict[StreamClient, _Connection] = {}
        self.connections: list[dict] = []

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = client_ssl_context(self._cafile)
        return self._ssl_context

    # -- sending --------------------------------------------------------------------------------
    def _send_stream(self, data: bytes, dest) -> None:
        dest = dest if isinstance(dest, StreamClient) else StreamClient(dest[0], dest[1], dest.transport)
        conn = self._conns.get(dest)
        if conn is None:  # a failed connection is not tried again: the agent has moved on
            conn = self._conns[dest] = _Connection(dest, opened_at=self.now())
            assert self._loop is not None
            conn.task = self._loop.create_task(self._run(conn))
        if conn.failed:
            self.send_errors += 1
            return
        framed = frame_for_stream(data)
        if conn.writer is None:
            conn.pending.append(framed)
        elif not conn.writer.is_closing():
            conn.writer.write(framed)
        else:
            self.send_errors += 1

    # -- one connection ---------------------------------------------------------------------------
    async def _run(self, conn: _Connection) -> None:
        dest = conn.dest
        record = {"transport": dest.transport, "server": fmt((dest[0], dest[1])),
                  "opened": round(conn.opened_at or 0.0, 6), "connected": None, "failed": None, "why": ""}
        self.connections.append(record)
        kwargs: dict = {}
        if dest.transport == "tls":
            kwargs = {"ssl": self._tls_context(), "server_hostname": dest[0]}
        local = (self.local_addr[0], 0) if self.local_addr else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(dest[0], dest[1], local_addr=local, **kwargs), self.connect_timeout)
        except TimeoutError:
            why = (f"no answer to the {dest.transport.upper()} connection to {fmt((dest[0], dest[1]))} within "
                   f"{self.connect_timeout:g} s (a firewall dropping the SYN looks like this)")
            self._failed(conn, record, why)
            return
        except ssl.SSLError as exc:
            self._failed(conn, record, f"TLS handshake with {fmt((dest[0], dest[1]))} failed: {exc.reason or exc}")
            return
        except OSError as exc:
            self._failed(conn, record, f"cannot connect to {fmt((dest[0], dest[1]))} over "
                                       f"{dest.transport.upper()}: {exc.strerror or exc}")
            return
        if self._closed:
            writer.close()
            return
        conn.writer = writer
        conn.connected_at = self.now()
        record["connected"] = round(conn.connected_at, 6)
        for framed in conn.pending:
            writer.write(framed)
        conn.pending.clear()
        why = f"the TURN server {fmt((dest[0], dest[1]))} closed the {dest.transport.upper()} connection"
        try:
            await pump_frames(reader, lambda frame: self.protocol.datagram_received(frame, dest, self.now()),
                              self._after_step, lambda: self._closed, fmt((dest[0], dest[1])))
        except StunParseError as exc:
            why = f"the {dest.transport.upper()} stream from {fmt((dest[0], dest[1]))} is not TURN: {exc}"
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            why = f"{dest.transport.upper()} connection error: {exc}"
        except asyncio.CancelledError:
            return
        if not self._closed:
            self._failed(conn, record, why)
        with contextlib.suppress(Exception):
            writer.close()

    def _failed(self, conn: _Connection, record: dict, why: str) -> None:
        conn.failed = why
        conn.pending.clear()
        record["failed"] = round(self.now(), 6)
        record["why"] = why
        if self._closed:
            return
        tell = getattr(self.protocol, "stream_failed", None)
        if tell is not None:
            try:
                tell(conn.dest, why, self.now())
            except Exception:
                log.exception("protocol failed in stream_failed")
        self._after_step()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Close like ``close()``, but let each TCP/TLS connection end cleanly: TLS close_notify and FIN
        both ways, waiting up to ``timeout`` s for the server's side (no RST from a socket closed too soon)."""
        if self._closed:
            return
        writers = [c.writer for c in self._conns.values() if c.writer is not None]
        Driver.close(self)  # the agent's goodbye, the UDP socket; the readers stop delivering
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout)
        self.close()

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def close(self) -> None:
        """Say goodbye (the agent's ``close()``), then close the UDP socket and every connection."""
        if not self._closed:
            super().close()
        for conn in self._conns.values():
            if conn.writer is not None:
                with contextlib.suppress(Exception):
                    conn.writer.close()
            if conn.task is not None and not conn.task.done():
                conn.task.cancel()


__all__ = ["IceDriver", "CONNECT_TIMEOUT"]
