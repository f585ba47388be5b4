"""Which world a notebook runs in: simulated, the real Linux lab, or recorded captures.

The course runs every scenario in one of three worlds:

* ``"sim"`` - :mod:`p2plab.sim`, a deterministic simulated network inside Python. Runs everywhere,
  and every run gives the same packets.
* ``"netns"`` - :mod:`p2plab.netns`, real Linux network namespaces with nftables NAT. Needs root
  or, without root, unprivileged user namespaces; plus ``ip`` and ``nft`` (found in the sbin folders
  too, where Debian puts them).
* ``"recorded"`` - captures made in the real lab and shipped in ``data/``, read with scapy.

A notebook asks for the world it would like; it gets that one when this machine can run it, and
the nearest one it can run otherwise::

    >>> from p2plab.world import choose_world
    >>> print(choose_world("sim"))
    This notebook runs in the simulated world (p2plab.sim: a deterministic network inside Python). Every run gives the same packets, on every machine.

Set the environment variable ``P2PLAB_WORLD`` (``netns`` or ``recorded``) to choose what the
real-lab cells do on every notebook - e.g. ``recorded`` makes a whole class see the same shipped
captures even on machines that could run the real lab. Simulated cells stay simulated.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from . import doctor
from .errors import ConfigurationError

WORLDS = ("sim", "netns", "recorded")
ENV_VAR = "P2PLAB_WORLD"

TITLES = {
    "sim": "the simulated world (p2plab.sim: a deterministic network inside Python)",
    "netns": "the real Linux lab (network namespaces with nftables NAT on this machine)",
    "recorded": "the recorded world (captures made in the real Linux lab, read from data/)",
}
# The world to try next when the preferred one cannot run here, nearest first.
FALLBACKS = {
    "sim": (),
    "netns": ("recorded", "sim"),
    "recorded": ("sim",),
}


@dataclass(frozen=True)
class WorldStatus:
    """Whether this machine can run one world: ``available``, why (``reason``), and ``enable``,
    the exact command that makes it available (``""`` when it already is)."""

    name: str
    available: bool
    reason: str
    enable: str = ""


@dataclass(frozen=True)
class WorldChoice:
    """The world a notebook runs in (``name``), the one it asked for (``preferred``), and a
    ``sentence`` saying so. ``str(choice)`` is the sentence."""

    name: str
    preferred: str
    sentence: str
    reason: str = ""  # why the preferred world could not run ("" when it did)

    @property
    def fell_back(self) -> bool:
        return self.name != self.preferred

    def __str__(self) -> str:
        return self.sentence


_cache: dict[str, WorldStatus] | None = None


def _check_world(name: object, what: str = "world") -> str:
    key = str(name).strip().lower() if isinstance(name, str) else name
    if key not in WORLDS:
        raise ConfigurationError(
            f"{what} {name!r} is not one of the course's worlds. The worlds are 'sim' (simulated), "
            f"'netns' (the real Linux lab) and 'recorded' (captures); e.g. choose_world('sim')"
        )
    return key  # type: ignore[return-value]


def _sim_status() -> WorldStatus:
    return WorldStatus("sim", True, "pure Python: runs on every machine, the same way every time")


def _netns_status() -> WorldStatus:
    if platform.system() != "Linux":
        return WorldStatus("netns", False, f"network namespaces exist only on Linux (this is {platform.system()})",
                           "use a Linux machine or VM")
    ok, why = doctor.probe_netns()  # the lab's own probe: builds, enters and tests a namespace
    return WorldStatus("netns", ok, why, "" if ok else doctor.netns_fix(why))


def _recorded_status() -> WorldStatus:
    scapy = doctor.package_version("scapy")
    pcaps = doctor.recorded_pcaps()
    shipped = f"data/ holds {len(pcaps)} capture file{'s' if len(pcaps) != 1 else ''}"
    if scapy:
        return WorldStatus("recorded", True, f"scapy {scapy} reads captures; {shipped}")
    if pcaps:
        return WorldStatus("recorded", True, f"{shipped} (install scapy to dissect them)",
                           "python -m pip install scapy")
    return WorldStatus("recorded", False, f"scapy is not installed and {shipped}",
                       "python -m pip install -e .   (or: make lab)")


def capabilities(refresh: bool = False) -> dict[str, WorldStatus]:
    """Which worlds this machine can run: ``{"sim": WorldStatus, "netns": ..., "recorded": ...}``.

    The answer is worked out once (creating a throw-away namespace takes a moment) and remembered;
    ``refresh=True`` checks again. Never raises: a check that fails marks its world unavailable.
    """
    global _cache
    if _cache is None or refresh:
        result = {}
        for name, check in (("sim", _sim_status), ("netns", _netns_status), ("recorded", _recorded_status)):
            try:
                result[name] = check()
            except Exception as exc:  # noqa: BLE001 - a broken probe must not break a notebook
                result[name] = WorldStatus(name, name == "sim", f"the check failed: {type(exc).__name__}: {exc}",
                                           "python -m p2plab doctor")
        _cache = result
    return dict(_cache)


def choose_world(preferred: str = "sim", fallbacks: tuple[str, ...] | None = None) -> WorldChoice:
    """The world to run in: ``preferred`` when this machine can run it, else the first of
    ``fallbacks`` that it can (by default netns -> recorded -> sim, recorded -> sim).

    ``P2PLAB_WORLD`` in the environment, when set, replaces a preferred *real* world (netns or
    recorded). The sim world runs everywhere, so ``choose_world("sim")`` always picks it and says
    the same sentence everywhere.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    preferred = _check_world(preferred, "preferred world")
    if env and preferred != "sim":
        preferred = _check_world(env, f"{ENV_VAR}")
    order = (preferred,) + tuple(_check_world(f, "fallback world") for f in
                                 (FALLBACKS[preferred] if fallbacks is None else fallbacks))
    if "sim" not in order:
        order += ("sim",)
    caps = capabilities()
    for name in order:
        if caps[name].available:
            break
    else:  # pragma: no cover - sim is always available
        name = "sim"
    if name == preferred:
        sentence = f"This notebook runs in {TITLES[name]}."
        if name == "sim":
            sentence += " Every run gives the same packets, on every machine."
        return WorldChoice(name, preferred, sentence)
    status = caps[preferred]
    sentence = (f"This notebook would like {TITLES[preferred]}, but this machine cannot run it "
                f"({status.reason}), so it runs in {TITLES[name]} instead.")
    if status.enable:
        sentence += f" To enable {preferred}: {status.enable}"
    return WorldChoice(name, preferred, sentence, status.reason)
