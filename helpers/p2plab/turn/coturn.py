"""A configuration file for coturn's ``turnserver``, for comparing p2plab's TURN server with it.

The interop tests and ``benchmarks/turn_capacity.py`` run coturn in the foreground from a
temporary file written here: listening and relaying on 127.0.0.1 only, long-term credentials
``alice:secret`` in realm ``p2plab``, loopback peers allowed (coturn refuses them by default),
no DTLS, no TCP relaying, no telnet CLI.

>>> from pathlib import Path
>>> "listening-port=3478" in coturn_config(3478, Path("/tmp/turnserver.pid"))
True
"""

from __future__ import annotations

from pathlib import Path

BASE = """listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port={port}
min-port=49152
max-port=65535
lt-cred-mech
user={user}
realm={realm}
allow-loopback-peers
no-dtls
no-tcp-relay
no-cli
fingerprint
no-multicast-peers
pidfile={pidfile}
log-file={log_file}
simple-log
{extra}
"""


def coturn_config(port: int, pidfile: Path | str, *, extra: str = "no-tcp\nno-tls", log_file: str = "stdout",
                  user: str = "alice:secret", realm: str = "p2plab") -> str:
    """The text of a turnserver.conf listening on 127.0.0.1:``port`` (UDP; TCP and TLS off unless
    ``extra`` replaces ``no-tcp``/``no-tls`` with e.g. ``tls-listening-port=5349``, ``cert=`` and
    ``pkey=`` lines). ``log_file`` is ``stdout`` (read it from the process) or ``/dev/null``."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535; got {port}")
    if ":" not in user:
        raise ValueError(f"user must be NAME:PASSWORD, e.g. alice:secret; got {user!r}")
    return BASE.format(port=port, pidfile=pidfile, log_file=log_file, user=user, realm=realm, extra=extra)


def write_coturn_config(directory: Path | str, port: int, **options) -> Path:
    """Write ``turnserver-PORT.conf`` (and name its pid file) in ``directory``; returns its path,
    for ``turnserver -c PATH``. ``options`` go to ``coturn_config``."""
    directory = Path(directory)
    path = directory / f"turnserver-{port}.conf"
    path.write_text(coturn_config(port, directory / f"turnserver-{port}.pid", **options))
    return path


__all__ = ["coturn_config", "write_coturn_config"]
