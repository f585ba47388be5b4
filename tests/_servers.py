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

    def __init__(self, protocol, host: str = "127.0.0.1") -> None:
        self.protocol = protocol
        self.host = host
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
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
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
