"""TURN over TCP and TLS: for networks that let only TCP (or TLS on port 443) out.

RFC 8656 lets a client reach its TURN server over UDP, TCP or TLS-over-TCP; the relay towards
peers stays UDP. A byte stream has no datagram boundaries, so each message is found from its own
header (RFC 8489 section 6.2.2, RFC 8656 section 12.5):

* a STUN message (first byte 0x00-0x3F) is 20 + its length field bytes long;
* a ChannelData message (first byte 0x40-0x7F) is 4 + its length field bytes, **padded to a
  multiple of 4** on a stream (over UDP the padding is optional).

``StreamFramer`` cuts a stream into such messages; ``frame_for_stream`` adds the padding.

The sans-I/O ``TurnServer`` does not change: a message that arrived on a connection is fed to it
like a datagram, with the client's address given as a ``StreamClient`` - an ``(ip, port)`` that
also says "tcp" or "tls", so it never equals the same address over UDP (another 5-tuple, another
allocation). Answers addressed to a ``StreamClient`` go back on its connection.

* ``serve_streams(driver, host, port, ssl_context=None)`` adds a TCP (or TLS) listener to an
  ``aio.Driver`` running a ``TurnServer``. Connections that stall in the middle of a message (or
  send nothing at all) are closed after ``frame_timeout`` seconds, input that is neither STUN
  nor ChannelData closes the connection at once, and a closed connection deletes its allocation
  (its 5-tuple can never carry an answer again).
* ``StreamDriver(TurnClient(..., transport="tcp"), server, ssl_context=None)`` runs a client over
  a connection, like ``aio.Driver`` does over UDP.
* ``pump_frames(reader, deliver, ...)`` reads whole messages off a stream for a client-side driver
  (``StreamDriver`` here, the ICE agent's ``p2plab.ice.streams.IceDriver``).
* ``lab_certificate(directory)`` makes a self-signed certificate for the lab with the ``openssl``
  command-line tool; ``server_ssl_context(cert, key)`` and ``client_ssl_context(cafile)`` build
  standard-library ``ssl`` contexts.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..addresses import fmt
from ..aio import Driver
from ..errors import ConfigurationError, StunParseError
from ..sansio import Addr, DatagramProtocol, Event
from ..stun.message import HEADER_LEN, MAGIC_COOKIE

log = logging.getLogger("p2plab.turn.stream")

FRAME_TIMEOUT = 10.0  # seconds a connection may take to finish a message it started
IDLE_TIMEOUT = 3660.0  # silent longer than the longest allocation lifetime (+1 min): the client is gone
_COOKIE = struct.pack("!I", MAGIC_COOKIE)


class StreamClient(tuple):
    """The address of a client connected over TCP or TLS: unpacks as ``(ip, port)``, has
    ``.transport`` ("tcp" or "tls") and never equals the same ``(ip, port)`` over UDP."""

    transport: str

    def __new__(cls, ip: str, port: int, transport: str = "tcp") -> StreamClient:
        obj = super().__new__(cls, (ip, int(port)))
        obj.transport = transport
        return obj

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StreamClient) and other.transport == self.transport
                and tuple.__eq__(self, other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.transport, self[0], self[1]))

    def __repr__(self) -> str:
        return f"StreamClient({self.transport} {fmt((self[0], self[1]))})"


def frame_for_stream(data: bytes) -> bytes:
    """``data`` as it goes on a stream: ChannelData gets zero padding to a multiple of 4."""
    if data and 0x40 <= data[0] <= 0x7F and len(data) % 4:
        return data + b"\0" * (4 - len(data) % 4)
    return data


class StreamFramer:
    """Cuts a TCP/TLS byte stream into STUN and ChannelData messages.

    ``feed(bytes)`` returns the complete messages so far (ChannelData without its padding) and
    raises ``StunParseError`` when the stream cannot be TURN; ``pending`` is the number of bytes
    of a message that has started but not finished."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.offset = 0  # stream offset of the start of the buffer (for error messages)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _frame_size(self) -> int | None:
        buf = self._buf
        first = buf[0]
        if first < 0x40:
            if len(buf) < 8:
                return None
            if bytes(buf[4:8]) != _COOKIE:
                raise StunParseError(f"bad magic cookie 0x{bytes(buf[4:8]).hex()} at stream offset "
                                     f"{self.offset + 4}; a STUN message on a stream needs 0x2112a442")
            length = struct.unpack_from("!H", buf, 2)[0]
            if length % 4:
                raise StunParseError(f"STUN length {length} at stream offset {self.offset + 2} is not a "
                                     "multiple of 4")
            return HEADER_LEN + length
        if first < 0x80:
            if len(buf) < 4:
                return None
            length = struct.unpack_from("!H", buf, 2)[0]
            return 4 + length + (-length % 4)
        raise StunParseError(f"byte 0x{first:02x} at stream offset {self.offset} starts neither a STUN "
                             "message (0x00-0x3F) nor ChannelData (0x40-0x7F); TURN over TCP/TLS carries "
                             "only those")

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames = []
        while self._buf:
            size = self._frame_size()
            if size is None or len(self._buf) < size:
                break
            frame = bytes(self._buf[:size])
            del self._buf[:size]
            self.offset += size
            if frame[0] >= 0x40:  # ChannelData: drop the stream padding
                frame = frame[:4 + struct.unpack_from("!H", frame, 2)[0]]
            frames.append(frame)
        return frames


# -- server side ------------------------------------------------------------------------------------
async def serve_streams(driver: Driver, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                        frame_timeout: float = FRAME_TIMEOUT, idle_timeout: float | None = IDLE_TIMEOUT) -> asyncio.Server:
    """Listen for TURN clients over TCP (or TLS with ``ssl_context``) on ``host:port`` and feed
    their messages to ``driver``'s protocol (a started ``aio.Driver``). A connection is closed when
    a message stays unfinished for ``frame_timeout`` s (or nothing at all arrives in that time),
    and when it is silent for ``idle_timeout`` s (None: never). Returns the asyncio server
    (``server.sockets[0].getsockname()`` is the bound address; ``server.close()`` stops it)."""
    transport = "tls" if ssl_context is not None else "tcp"
    writers = driver.stream_writers
    protocol = driver.protocol

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = StreamClient(peer[0], peer[1], transport)
        writers[client] = writer
        framer = StreamFramer()
        started = False
        why = "closed by the client"
        try:
            while True:
                waiting = frame_timeout if framer.pending or not started else idle_timeout
                try:
                    data = await asyncio.wait_for(reader.read(65536), waiting)
                except TimeoutError:
                    why = (f"no complete message within {frame_timeout:g} s" if framer.pending or not started
                           else f"idle for {idle_timeout:g} s")
                    break
                if not data:
                    break
                started = True
                frames = framer.feed(data)
                for frame in frames:
                    try:
                        protocol.datagram_received(frame, client, driver.now())
                    except Exception:  # a protocol bug must not kill the server
                        log.exception("protocol failed on a message from %s", client)
                if frames:
                    driver._after_step()
        except StunParseError as exc:
            why = str(exc)
            if hasattr(protocol, "stats"):
                protocol.stats["bad-stream"] += 1
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            why = f"connection error: {exc}"
        except asyncio.CancelledError:  # the server is stopping
            why = "server stopping"
        finally:
            log.info("%s connection from %s closed: %s", transport.upper(), fmt(peer[:2]), why)
            writers.pop(client, None)
            writer.close()
            closed = getattr(protocol, "stream_closed", None)
            if closed is not None:
                protocol.now = driver.now()
                closed(client)
                driver._after_step()

    return await asyncio.start_server(handle, host, port, ssl=ssl_context,
                                      ssl_handshake_timeout=frame_timeout if ssl_context else None)


# -- client side -----------------------------------------------------------------------------------
async def pump_frames(reader: asyncio.StreamReader, deliver: Callable[[bytes], None], after_step: Callable[[], None],
                      closed: Callable[[], bool], peer: str) -> None:
    """Read a STUN/ChannelData stream until it ends (or ``closed()``), giving each whole message to ``deliver``.

    ``after_step`` runs after every read (to flush what the protocol wants to send). A message the protocol
    fails on is logged and skipped; input that is not STUN or ChannelData raises ``StunParseError`` and a broken
    connection raises ``ConnectionError``/``ssl.SSLError``/``OSError``, for the caller to explain.
    """
    framer = StreamFramer()
    while not closed():
        data = await reader.read(65536)
        if not data:
            return
        for frame in framer.feed(data):
            try:
                deliver(frame)
            except Exception:  # a protocol bug must not kill the driver
                log.exception("protocol failed on a message from %s", peer)
        after_step()


class StreamDriver(Driver):
    """Runs a client protocol (e.g. ``TurnClient(..., transport="tcp")``) over one TCP or TLS
    connection to ``server``; the same interface as ``aio.Driver`` (``wait_for``, ``poke``,
    ``call``, ``async with``). An event ``connection-closed`` tells when the server hung up."""

    def __init__(self, protocol: DatagramProtocol, server: Addr, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None,
                 on_event: Callable[[Event], None] | None = None) -> None:
        super().__init__(protocol, ("0.0.0.0", 0), on_event)
        self.server = (server[0], int(server[1]))
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> Addr:
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        kwargs = {}
        if self.ssl_context is not None:
            kwargs = {"ssl": self.ssl_context, "server_hostname": self.server_hostname or self.server[0]}
        reader, self._writer = await asyncio.open_connection(self.server[0], self.server[1], **kwargs)
        name = self._writer.get_extra_info("sockname")
        self.local_addr = (name[0], name[1])
        self.protocol.start(self.now(), self.local_addr)
        self._after_step()
        self._task = asyncio.create_task(self._read(reader))
        return self.local_addr

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "closed by the server"
        try:
            await pump_frames(reader, lambda frame: self.protocol.datagram_received(frame, self.server, self.now()),
                              self._after_step, lambda: self._closed, fmt(self.server))
        except StunParseError as exc:
            why = str(exc)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            why = f"connection error: {exc}"
        if not self._closed:
            self._publish(Event("connection-closed", self.now(), {"reason": why}))

    def _sync_sockets(self) -> None:
        pass

    def _send_outbox(self) -> None:
        for entry in self.protocol.datagrams_to_send():
            data, dest = entry[0], entry[1]
            if self._writer is None or self._writer.is_closing() or tuple(dest) != self.server:
                self.send_errors += 1
                continue
            self._writer.write(frame_for_stream(data))

    def close(self) -> None:
        """Say goodbye (the protocol's ``close()``), then close the connection."""
        if self._closed:
            return
        super().close()
        if self._writer is not None:
            self._writer.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()


# -- certificates --------------------------------------------------------------------------------
def lab_certificate(directory: str | Path, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost"),
                    days: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate and key for a lab TURN server (made with ``openssl`` once,
    reused afterwards). Returns (cert path, key path). Clients must trust this certificate
    explicitly (``client_ssl_context(cert)``): it is not signed by any public authority."""
    directory = Path(directory)
    cert, key = directory / "turn-lab-cert.pem", directory / "turn-lab-key.pem"
    if cert.exists() and key.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigurationError("TLS needs a certificate: the 'openssl' command is missing, so p2plab cannot "
                                 "make one for the lab - install it (apt-get install openssl) or give "
                                 "--cert FILE --key FILE")
    directory.mkdir(parents=True, exist_ok=True)
    san = ",".join(f"IP:{h}" if h[0].isdigit() or ":" in h else f"DNS:{h}" for h in hosts)
    out = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
                          "-subj", "/CN=p2plab TURN lab server", "-addext", f"subjectAltName={san}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise ConfigurationError(f"openssl could not make the lab certificate: {out.stderr.strip()[-500:]}")
    key.chmod(0o600)
    return cert, key


def server_ssl_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A TLS server context from a certificate and key file (PEM)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot use certificate {cert} with key {key}: {exc}") from None
    return ctx


def client_ssl_context(cafile: str | Path | None = None) -> ssl.SSLContext:
    """A TLS client context that verifies the server: against ``cafile`` (e.g. the lab
    certificate) or, without it, the system's trusted authorities."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    return ctx

