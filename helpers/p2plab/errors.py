"""The error types of p2plab.

Every mistake a learner can make with p2plab's public functions ends in one of these, with a
message that says what was wrong, what is allowed, and an example. Catch ``P2PLabError`` to
catch them all.
"""

from __future__ import annotations


class P2PLabError(Exception):
    """Base class of every error p2plab raises on purpose."""


class InvalidAddressError(P2PLabError, ValueError):
    """An IP address (or address:port endpoint) that is not one."""


class InvalidPortError(P2PLabError, ValueError):
    """A port outside 0-65535 (ports are 16-bit numbers)."""


class UnknownPresetError(P2PLabError, ValueError):
    """A NAT preset or behaviour name that p2plab does not know."""


class ConfigurationError(P2PLabError, ValueError):
    """A setting that cannot work (negative latency, a loss rate above 1, ...)."""


class TopologyError(P2PLabError, ValueError):
    """A network description that does not hang together (duplicate names, unknown parent, ...)."""


class StunParseError(P2PLabError, ValueError):
    """Bytes that are not a well-formed STUN/TURN message or ChannelData frame.

    The message says what is wrong and where (byte offset), for example
    ``bad magic cookie 0xdeadbeef at offset 4 (STUN uses 0x2112A442)``.
    """


class TraceError(P2PLabError, ValueError):
    """A trace or capture that cannot be used (empty, or a file that is not a pcap)."""


class LabUnavailableError(P2PLabError, RuntimeError):
    """The real Linux lab (network namespaces) cannot run on this machine; the message says why."""


class NotStartedError(P2PLabError, NotImplementedError):
    """A lab exercise whose code has not been written yet."""
