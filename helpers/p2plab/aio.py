"""Run any sans-I/O p2plab protocol over real UDP sockets with asyncio, on real time.

``Driver(protocol, ("127.0.0.1", 0))`` binds the main socket, calls ``protocol.start`` and then
keeps feeding the protocol: arriving datagrams, timers when ``next_timer()`` comes due. After
each step it sends the outbox and collects events.

Protocols built on ``p2plab.stun.server.MultiAddressProtocol`` may want more sockets (an RFC 5780
server's alternate address, a TURN server's relay ports): the driver opens a socket for each
address in ``protocol.local_addresses()``, closes the ones that disappear, delivers datagrams
from them with ``datagram_received_on`` and sends each outbox entry from its ``.via`` address.
It also sets ``protocol.reserve_port`` so a TURN server knows a relay port is really free.

>>> # async with Driver(StunServer(), ("127.0.0.1", 0)) as d: print(d.local_addr)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable

from .addresses import fmt
from .sansio import Addr, DatagramProtocol, Event

log = logging.getLogger("p2plab.aio")

MAX_DATAGRAM = 65535
BATCH = 256  # datagrams read per wake-up before letting others run
MAIN_RCVBUF = 1 << 20  # receive buffer asked for the main socket (a busy server's; capped by rmem_max)
MAX_STREAM_BUFFER = 1 << 20  # bytes queued for a slow TCP/TLS reader before messages to it are dropped
# Don't Fragment per datagram (outbox entries with ``.df``, e.g. TURN's DONT-FRAGMENT): Linux only
DF_SUPPORTED = sys.platform.startswith("linux")
_IP_MTU_DISCOVER, _IP_PMTUDISC_DO = 10, 2  # from <linux/in.h>; Python's socket module lacks them


def _sendto_df(sock: socket.socket, data: bytes, dest: Addr) -> None:
    """Send one datagram with the IP DF bit set (IPv6: never fragmented), then restore the socket."""
    if sock.family == socket.AF_INET:
        level, opt, on = socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO
    else:
        level, opt, on = socket.IPPROTO_IPV6, socket.IPV6_DONTFRAG, 1
    old = sock.getsockopt(level, opt)
    sock.setsockopt(level, opt, on)
    try:
        sock.sendto(data, dest)
    finally:
        sock.setsockopt(level, opt, old)


def _open_socket(addr: Addr) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((addr[0], int(addr[1])))
    except OSError:
        sock.close()
        raise
    return sock


class Driver:
    """Runs one sans-I/O protocol on asyncio UDP sockets. Use ``async with`` or start/stop."""

    def __init__(self, protocol: DatagramProtocol, local_addr: Addr,
                 on_event: Callable[[Event], None] | None = None, keep_events: int = 10_000) -> None:
        self.protocol = protocol
        self.requested_addr = (local_addr[0], int(local_addr[1]))
        self.on_event = on_event
        self.events: collections.deque[Event] = collections.deque(maxlen=keep_events)
        self.sockets: dict[Addr, socket.socket] = {}
        self.local_addr: Addr | None = None
        self.send_errors = 0
        # connections of stream clients (p2plab.turn.stream): destination -> asyncio StreamWriter
        self.stream_writers: dict = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future]] = []
        self._closed = False
        # the protocol's ``addresses_version`` when the sockets were last synced (see _sync_sockets)
        self._synced_version: object = None

    # -- life cycle ----------------------------------------------------------------------------
    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time() - self._t0

    async def start(self) -> Addr:
        """Bind the main socket, start the protocol; returns the bound (ip, port)."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        sock = _open_socket(self.requested_addr)
        with contextlib.suppress(OSError):  # room for bursts while the process waits for a CPU
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAIN_RCVBUF)
        name = sock.getsockname()
        self.local_addr = (name[0], name[1])
        self._add_socket(self.local_addr, sock)
        if hasattr(self.protocol, "reserve_port"):
            self.protocol.reserve_port = self._reserve_port
        if hasattr(self.protocol, "can_dont_fragment"):
            self.protocol.can_dont_fragment = DF_SUPPORTED
        self.protocol.start(self.now(), self.local_addr)
        self._after_step()
        return self.local_addr

    def close(self) -> None:
        """Close every socket and cancel the timer.

        A protocol with a ``close()`` method (e.g. ``TurnClient``: Refresh LIFETIME=0) gets it
        called first, and what it queues is sent once (no retransmissions, no waiting)."""
        if self._closed:
            return
        goodbye = getattr(self.protocol, "close", None)
        if callable(goodbye) and self._loop is not None and self.local_addr is not None:
            try:
                self.protocol.now = self.now()
                goodbye()
                self._send_outbox()
            except Exception:
                log.exception("protocol failed while closing")
        self._closed = True
        if self._timer:
            self._timer.cancel()
        for sock in list(self.sockets.values()):
            self._remove_socket(sock)
        self.sockets.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()

    async def __aenter__(self) -> Driver:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    # -- sockets ------------------------------------------------------------------------------
    def _add_socket(self, addr: Addr, sock: socket.socket) -> None:
        assert self._loop is not None
        self.sockets[addr] = sock
        self._loop.add_reader(sock.fileno(), self._readable, addr, sock)

    def _remove_socket(self, sock: socket.socket) -> None:
        assert self._loop is not None
        with contextlib.suppress(Exception):
            self._loop.remove_reader(sock.fileno())
        sock.close()

    def _reserve_port(self, ip: str, port: int) -> bool:
        addr = (ip, int(port))
        if addr in self.sockets:
            return True
        try:
            sock = _open_socket(addr)
        except OSError:
            return False
        self._add_socket(addr, sock)
        self._synced_version = None  # the protocol may not keep it: check at the next sync
        return True

    def _sync_sockets(self) -> None:
        """Open sockets for new ``local_addresses()`` and close the ones that disappeared.

        A protocol with an ``addresses_version`` counter (TurnServer) bumps it whenever its
        addresses change; while it stays the same the (O(allocations)) comparison is skipped, so
        relaying a datagram costs the same with 1 or 1,000 allocations."""
        wanted_fn = getattr(self.protocol, "local_addresses", None)
        if wanted_fn is None:
            return
        version = getattr(self.protocol, "addresses_version", None)
        if version is not None and version == self._synced_version:
            return
        self._synced_version = version
        wanted = {(ip, int(port)) for ip, port in wanted_fn()}
        wanted.add(self.local_addr)
        for addr in list(self.sockets):
            if addr not in wanted:
                self._remove_socket(self.sockets.pop(addr))
        for addr in wanted - set(self.sockets):
            try:
                self._add_socket(addr, _open_socket(addr))
            except OSError as exc:
                log.warning("cannot bind %s: %s", fmt(addr), exc)
                failed = getattr(self.protocol, "local_address_failed", None)
                if failed:
                    failed(addr, self.now())

    # -- data path ----------------------------------------------------------------------------
    def _readable(self, addr: Addr, sock: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                data, src = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP errors reported on the socket
                continue
            src = (src[0], src[1])
            try:
                if addr == self.local_addr:
                    self.protocol.datagram_received(data, src, self.now())
                else:
                    self.protocol.datagram_received_on(data, src, addr, self.now())
            except Exception:  # a protocol bug must not kill the server
                log.exception("protocol failed on a datagram from %s", fmt(src))
            if self._closed or addr not in self.sockets:
                break
        self._after_step()

    def _fire_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.protocol.handle_timer(self.now())
        except Exception:
            log.exception("protocol failed in a timer")
        self._after_step()

    def _after_step(self) -> None:
        if self._closed:
            return
        self._sync_sockets()
        self._send_outbox()
        for ev in self.protocol.events():
            self._publish(ev)
        self._waiters = [(p, f) for p, f in self._waiters if not f.done()]
        self._schedule_timer()

    def _publish(self, ev: Event) -> None:
        """Record ``ev``, hand it to ``on_event`` and wake whoever ``wait_for``s it."""
        self.events.append(ev)
        if self.on_event:
            self.on_event(ev)
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(ev):
                fut.set_result(ev)

    def _send_outbox(self) -> None:
        for entry in self.protocol.datagrams_to_send():
            data, dest = entry[0], entry[1]
            if getattr(dest, "transport", None) is not None:  # a TCP/TLS client (turn.stream)
                self._send_stream(data, dest)
                continue
            via = getattr(entry, "via", None)
            sock = self.sockets.get(via) if via else None
            if sock is None:
                sock = self.sockets.get(self.local_addr)
            try:
                if getattr(entry, "df", False) and DF_SUPPORTED:
                    _sendto_df(sock, data, dest)
                else:
                    sock.sendto(data, dest)
            except OSError as exc:
                self.send_errors += 1
                log.debug("send to %s failed: %s", fmt(dest), exc)

    def _send_stream(self, data: bytes, dest) -> None:
        writer = self.stream_writers.get(dest)
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_STREAM_BUFFER:
            self.send_errors += 1  # gone, or a reader too slow to keep up: drop like UDP would
            return
        if data[:1] and 0x40 <= data[0] <= 0x7F and len(data) % 4:  # ChannelData is padded on streams
            data = data + b"\0" * (4 - len(data) % 4)
        writer.write(data)

    def _schedule_timer(self) -> None:
        at = self.protocol.next_timer()
        if at == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(self._t0 + at, self._fire_timer)

    # -- helpers for users --------------------------------------------------------------------
    def call(self, fn: Callable, *args, **kwargs):
        """Call a protocol method now and flush its output, e.g. ``d.call(client.create_permission, peer)``."""
        self.protocol.now = self.now()
        result = fn(*args, **kwargs)
        self._after_step()
        return result

    def poke(self) -> None:
        """Flush after calling a protocol method directly (e.g. ``client.allocate()``)."""
        self.protocol.now = self.now()
        self._after_step()

    async def wait_for(self, kinds: str | tuple[str, ...], timeout: float | None = None) -> Event:
        """Wait for the next event whose kind is one of ``kinds`` (raises TimeoutError)."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        assert self._loop is not None
        fut: asyncio.Future = self._loop.create_future()
        self._waiters.append((lambda ev: ev.kind in kinds, fut))
        return await asyncio.wait_for(fut, timeout)

    async def serve_forever(self, handle_signals: bool = True,
                            on_ready: Callable[[], None] | None = None) -> None:
        """Run until cancelled or, with ``handle_signals``, until SIGINT/SIGTERM.

        ``on_ready`` is called once the signal handlers are in place (e.g. to print a banner)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, stop.set)
                    installed.append(sig)
        if on_ready:
            on_ready()
        try:
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.close()


async def run_protocol(protocol: DatagramProtocol, local_addr: Addr,
                       until: str | tuple[str, ...] | None = None, timeout: float | None = None) -> list[Event]:
    """Run ``protocol`` on a socket bound to ``local_addr``.

    With ``until`` (event kinds), return once such an event happens (or after ``timeout``
    seconds, raising TimeoutError); without it, serve until SIGINT/SIGTERM. Returns the events.
    """
    driver = Driver(protocol, local_addr)
    await driver.start()
    try:
        if until is None:
            await driver.serve_forever()
        else:
            already = [ev for ev in driver.events if ev.kind in ((until,) if isinstance(until, str) else until)]
            if not already:
                await driver.wait_for(until, timeout)
    finally:
        driver.close()
    return list(driver.events)


def serve(protocol: DatagramProtocol, host: str, port: int, banner: Callable[[Addr], str],
          farewell: Callable[[], str]) -> int:
    """Run a server protocol on ``host:port`` until SIGINT/SIGTERM (the CLIs' servers).

    Prints ``banner(bound address)`` once listening and ``farewell()`` when stopped; a port that
    cannot be bound gives one clear line and exit status 1.
    """
    import sys

    async def main() -> int:
        driver = Driver(protocol, (host, port))
        try:
            addr = await driver.start()
        except OSError as exc:
            print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
            return 1
        await driver.serve_forever(on_ready=lambda: print(banner(addr), flush=True))
        print(farewell(), flush=True)
        return 0

    return asyncio.run(main())
