"""Test helper: run a p2plab sans-I/O protocol on loopback in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading

from p2plab.aio import Driver


def free_port(ip: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago (for tools that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class ServerThread:
    """``with ServerThread(StunServer()) as srv: srv.addr`` - a real server on 127.0.0.1."""

    def __init__(self, protocol, host: str = "127.0.0.1", tcp: bool = False, tls=None,
                 frame_timeout: float = 10.0) -> None:
        """``tcp=True`` also listens for TURN over TCP (``tcp_addr``); ``tls`` (an ssl context)
        for TURN over TLS (``tls_addr``) - see p2plab.turn.stream."""
        self.protocol = protocol
        self.host = host
        self.tcp, self.tls, self.frame_timeout = tcp, tls, frame_timeout
        self.tcp_addr: tuple[str, int] | None = None
        self.tls_addr: tuple[str, int] | None = None
        self.addr: tuple[str, int] | None = None
        self.driver: Driver | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self.driver = Driver(self.protocol, (self.host, 0))
            self.addr = await self.driver.start()
            listeners = []
            if self.tcp or self.tls:
                from p2plab.turn.stream import serve_streams

                if self.tcp:
                    listeners.append(await serve_streams(self.driver, self.host, 0, frame_timeout=self.frame_timeout))
                    self.tcp_addr = listeners[-1].sockets[0].getsockname()[:2]
                if self.tls:
                    listeners.append(await serve_streams(self.driver, self.host, 0, self.tls,
                                                         frame_timeout=self.frame_timeout))
                    self.tls_addr = listeners[-1].sockets[0].getsockname()[:2]
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            for listener in listeners:
                listener.close()
            self.driver.close()

        asyncio.run(main())

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def call(self, fn):
        """Run ``fn()`` in the server's thread (protocol objects are not thread-safe)."""
        done = threading.Event()
        box = []

        def work() -> None:
            box.append(fn())
            done.set()

        self._loop.call_soon_threadsafe(work)
        done.wait(10)
        return box[0] if box else None

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
