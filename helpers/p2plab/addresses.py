"""Checking the addresses and ports a learner types, with messages that explain the rules."""

from __future__ import annotations

import ipaddress

from .errors import InvalidAddressError, InvalidPortError

Endpoint = tuple[str, int]

PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
SHARED_CGN = ipaddress.ip_network("100.64.0.0/10")
DOCUMENTATION_V4 = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def check_ip(value: object, what: str = "address") -> str:
    """Return ``value`` as a normalised IP address string, or raise InvalidAddressError.

    >>> check_ip("192.168.1.10")
    '192.168.1.10'
    """
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if not isinstance(value, str):
        raise InvalidAddressError(
            f"{what} must be an IP address written as text, like '192.168.1.10' or '2001:db8::1'; "
            f"got {value!r} ({type(value).__name__})"
        )
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        hint = ""
        parts = value.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            big = [p for p in parts if int(p) > 255]
            if big:
                hint = f": each of the four numbers is one byte, 0-255, and {big[0]} is more than 255"
        elif ":" in value and value.count(":") == 1:
            hint = ": that looks like address:port; give the address and the port separately"
        elif any(c.isalpha() for c in value) and "." in value:
            hint = ": that looks like a host name; p2plab needs a numeric address (no DNS in the lab)"
        raise InvalidAddressError(
            f"{what} {value!r} is not an IP address{hint}. "
            f"Write IPv4 as four numbers 0-255, e.g. '192.168.1.10', or IPv6 like '2001:db8::1'."
        ) from None


def check_port(value: object, what: str = "port", allow_zero: bool = True) -> int:
    """Return ``value`` as a port number, or raise InvalidPortError.

    Ports are 16-bit numbers, so they run from 0 to 65535 (0 means "pick one for me").

    >>> check_port(5000)
    5000
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        else:
            raise InvalidPortError(f"{what} must be a whole number 0-65535, e.g. 5000; got {value!r}")
    if not 0 <= value <= 65535 or (value == 0 and not allow_zero):
        low = 0 if allow_zero else 1
        raise InvalidPortError(
            f"{what} {value} does not exist: ports are 16-bit numbers, so they run from {low} to 65535 "
            f"(2**16 - 1). Pick one in that range, e.g. 5000."
        )
    return value


def check_endpoint(value: object, what: str = "endpoint") -> Endpoint:
    """Return ``(ip, port)`` from a tuple or an 'ip:port' string, checking both parts."""
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if not sep:
            raise InvalidAddressError(f"{what} {value!r} needs a port: write it as 'ip:port', e.g. '192.0.2.1:3478'")
        host = host.strip("[]")
        return check_ip(host, what), check_port(int(port) if port.isdigit() else port, what + " port")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return check_ip(value[0], what), check_port(value[1], what + " port")
    raise InvalidAddressError(f"{what} must be ('ip', port) or 'ip:port', e.g. ('192.0.2.1', 3478); got {value!r}")


def is_private(ip: str) -> bool:
    """True for RFC 1918 private IPv4 addresses (10/8, 172.16/12, 192.168/16)."""
    addr = ipaddress.ip_address(ip)
    return addr.version == 4 and any(addr in n for n in PRIVATE_V4)


def is_shared_cgn(ip: str) -> bool:
    """True for RFC 6598 shared address space 100.64.0.0/10 (carrier-grade NAT)."""
    addr = ipaddress.ip_address(ip)
    return addr.version == 4 and addr in SHARED_CGN


def fmt(ep: Endpoint) -> str:
    """'ip:port' (IPv6 in brackets)."""
    ip, port = ep
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
