"""The one-line text messages of the course's small rendezvous protocols (punch, reversal, ...).

A message is ASCII: a magic prefix, a kind, then fields separated by spaces, e.g.
``P2P1 REGISTER alice 192.168.1.10:5000 bob``. Readable in a capture, and easy to parse::

    >>> codec = TextMessages(b"P2P1 ")
    >>> codec.encode("HELLO", "alice")
    b'P2P1 HELLO alice'
    >>> codec.decode(b"P2P1 HELLO alice")
    ('HELLO', ['alice'])
    >>> parse_endpoint("[2001:db8::1]:5000")
    ('2001:db8::1', 5000)
"""

from __future__ import annotations

from .addresses import Endpoint


class TextMessages:
    """Encodes and decodes the messages of one protocol, told apart from others by ``magic``."""

    def __init__(self, magic: bytes) -> None:
        self.magic = magic

    def encode(self, kind: str, *fields: str) -> bytes:
        """One message: ``MAGIC KIND field field ...``."""
        return self.magic + " ".join((kind, *fields)).encode()

    def decode(self, data: bytes) -> tuple[str, list[str]] | None:
        """``(kind, fields)`` of a message, or None if these bytes are not one."""
        if not data.startswith(self.magic):
            return None
        try:
            words = data[len(self.magic):].decode("ascii").split()
        except UnicodeDecodeError:
            return None
        return (words[0], words[1:]) if words else None


def parse_endpoint(text: str) -> Endpoint:
    """``"ip:port"`` (or ``"[v6]:port"``) as an ``(ip, port)`` endpoint."""
    ip, _, port = text.rpartition(":")
    return ip.strip("[]"), int(port)
