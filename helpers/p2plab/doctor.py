"""``python -m p2plab doctor``: what this machine has, and which of the course's worlds it can run.

``report()`` returns one :class:`Row` per check; ``render()`` turns them into a text table. Every
check is wrapped, so a missing tool, package or permission becomes a row that says so (and the
exact command that fixes it) - the doctor itself never crashes.

Packages are looked up with ``importlib.metadata`` (their versions), never imported, so the doctor
is quick and ``import p2plab.doctor`` stays light.

The last rows say which worlds can run here:

* ``sim`` - the simulated network, pure Python: always.
* ``netns`` - the real Linux lab: root with ``ip`` and ``nft`` and working network namespaces, or,
  for an ordinary user, unprivileged user namespaces with ``ip``, ``nft``, ``unshare`` and
  ``nsenter``. The doctor asks the lab's own probe, which builds and enters a namespace.
* ``recorded`` - captures made in the real lab, read with scapy: when scapy is installed or
  ``data/`` holds pcaps.

The rows differ from machine to machine, so notebooks show the table in a cell whose output is not
compared (``# NBVAL_IGNORE_OUTPUT``) and use :mod:`p2plab.world` for the stable facts.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

# Status words, in the order a reader cares about them.
OK, MISSING, NO, INFO, ERROR = "ok", "missing", "no", "info", "error"

# Packages whose versions the table shows (distribution names, as pip knows them).
PACKAGES = ("jupyterlab", "ipywidgets", "scapy", "pandas", "plotly", "nbval")

# Debian/Ubuntu package for each tool: the fix for a missing tool is `sudo apt-get install PKG`.
TOOLS = {
    "ip": "iproute2",
    "nft": "nftables",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "turnserver": "coturn",
    "chromium": "chromium",
    "miniupnpd": "miniupnpd-nftables",
    "tayga": "tayga",
}
TOOL_PURPOSE = {
    "ip": "creates network namespaces and links (real Linux lab)",
    "nft": "kernel NAT rules (real Linux lab)",
    "tcpdump": "captures real packets",
    "tshark": "dissects captures (cross-check of p2plab's own decoder)",
    "turnserver": "coturn, a real TURN server (notebook 09)",
    "chromium": "a real browser doing ICE (notebook 10)",
    "miniupnpd": "a real UPnP IGD / NAT-PMP / PCP router daemon (notebook 12)",
    "tayga": "a NAT64 in user space for an IPv6-only home (notebook 14)",
}

INSTALL_HINT = "make lab   (or: .venv/bin/python -m pip install -e .)"
# Running JupyterLab as root needs --allow-root; this is the exact command, from the course folder.
RUN_AS_ROOT = "sudo make lab"
WORLDS = ("sim", "netns", "recorded")


@dataclass(frozen=True)
class Row:
    """One line of the doctor's table.

    ``section`` groups rows (python, package, system, tool, extension, world); ``status`` is one of
    ``ok``, ``missing``, ``no``, ``info``, ``error``; ``fix`` is the exact command to run, or ``""``.
    """

    section: str
    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (OK, INFO)


# ---------------------------------------------------------------------------------- probes
def which(tool: str) -> str | None:
    """Full path of ``tool`` on PATH or in the sbin folders, or None (see :mod:`p2plab.systools`)."""
    from . import systools

    return systools.find(tool)


def chromium_path() -> str | None:
    """Chromium goes by several names depending on the distribution."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = which(name)
        if found:
            return found
    return None


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)


def package_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, read from its metadata (not imported)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def probe_netns() -> tuple[bool, str]:
    """Can the real lab run here? The lab's own probe (:func:`p2plab.netns.lab.available`): it makes a
    namespace exactly as a lab does (as root, or rootless inside a user namespace), enters it and runs
    ``nft`` inside, so the doctor and ``punch --world netns`` never disagree."""
    from .netns.lab import available

    return available()


def _read_sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def userns_fix() -> str:
    """The command that turns on unprivileged user namespaces on this kernel."""
    if _read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "sudo sysctl -w kernel.unprivileged_userns_clone=1"
    if _read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    if _read_sysctl("/proc/sys/user/max_user_namespaces") == "0":
        return "sudo sysctl -w user.max_user_namespaces=15000"
    return "sudo sysctl -w kernel.unprivileged_userns_clone=1"


def netns_fix(why: str) -> str:
    """The step that would enable the real lab for this user, given why the probe said no."""
    if "not installed" in why:
        return why.rsplit(": ", 1)[-1]
    if is_root():
        return ("run in a privileged container: docker run --privileged ... (or --cap-add SYS_ADMIN "
                "--cap-add NET_ADMIN); until then the recorded world runs the real-lab cells")
    if "switched off" in why:
        return f"an administrator can run: {userns_fix()}; until then the recorded world runs the real-lab cells"
    return ("nothing you can change from inside: ask the administrator to allow user namespaces here "
            "(or to run the course as root); the recorded world runs the real-lab cells meanwhile")


def repo_root() -> Path:
    """The course folder: two levels above helpers/p2plab for a checkout (editable install);
    otherwise the nearest folder at or above the current one with ``course/`` and ``data/``
    (e.g. a student's nbgitpuller copy while the package is installed elsewhere)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file() and (here / "course").is_dir():
        return here
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "course").is_dir() and (folder / "data").is_dir():
            return folder
    return cwd


def recorded_pcaps() -> list[Path]:
    """Capture files shipped in data/."""
    data = repo_root() / "data"
    if not data.is_dir():
        return []
    return sorted(p for p in data.rglob("*") if p.suffix in (".pcap", ".pcapng") and p.is_file())


def labextension_dirs() -> list[Path]:
    """Folders JupyterLab reads prebuilt extensions from (without importing jupyter_core)."""
    roots: list[Path] = []
    for part in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
        if part:
            roots.append(Path(part))
    roots.append(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "jupyter")
    roots += [Path(sys.prefix) / "share" / "jupyter", Path("/usr/local/share/jupyter"), Path("/usr/share/jupyter")]
    seen, out = set(), []
    for root in roots:
        folder = root / "labextensions"
        if folder not in seen:
            seen.add(folder)
            out.append(folder)
    return out


def find_labextension(name: str) -> Path | None:
    for folder in labextension_dirs():
        candidate = folder / name
        if (candidate / "package.json").is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------- rows
def _safe(section: str, name: str, probe: Callable[[], Iterable[Row]]) -> list[Row]:
    """Run a probe; if it raises anything at all, return one 'error' row instead."""
    try:
        return list(probe())
    except Exception as exc:  # noqa: BLE001 - the doctor must never crash
        return [Row(section, name, ERROR, f"the check itself failed: {type(exc).__name__}: {exc}")]


def _python_rows() -> list[Row]:
    from . import __version__

    return [
        Row("python", "Python", OK if sys.version_info >= (3, 11) else MISSING,
            f"Python {platform.python_version()} ({sys.executable})",
            "" if sys.version_info >= (3, 11) else "install Python 3.11 or newer, then: make lab"),
        Row("python", "p2plab", OK, f"{__version__} ({Path(__file__).resolve().parent})"),
    ]


def _package_rows() -> list[Row]:
    rows = []
    for dist in PACKAGES:
        version = package_version(dist)
        rows.append(Row("package", dist, OK, version) if version
                    else Row("package", dist, MISSING, "not installed", INSTALL_HINT))
    return rows


def _system_rows() -> list[Row]:
    root = is_root()
    rows = [Row("system", "platform", INFO, f"{platform.system()} {platform.release()} ({platform.machine()})"),
            Row("system", "root", INFO, "yes (effective uid 0)" if root else "no (an ordinary user)")]
    if platform.system() != "Linux":
        rows.append(Row("system", "network namespaces", NO, "network namespaces exist only on Linux",
                        "use a Linux machine or VM (the sim and recorded worlds run everywhere)"))
        return rows
    ok, why = probe_netns()
    fix = "" if ok else netns_fix(why)
    rows.append(Row("system", "network namespaces", OK if ok else NO, why, fix))
    kind, gets = machine_kind(ok)
    rows.append(Row("system", "this machine", INFO, f"{kind}: {gets}"))
    from .netns.nat64lab import TUN_FIX, tun_problem

    problem = tun_problem()
    rows.append(Row("system", "tun device", NO, problem, TUN_FIX) if problem
                else Row("system", "tun device", OK, "/dev/net/tun opens: the real lab can run tayga (NAT64, notebook 14)"))
    return rows


def machine_kind(netns_ok: bool | None = None) -> tuple[str, str]:
    """What kind of machine this is, for the course, and what it gets: ``(kind, what runs)``.

    The kinds are the ones README.md's "What each machine gets" table describes: root on Linux, an
    ordinary Linux user, a JupyterHub single-user server, WSL, macOS/Windows, and a container that
    forbids user namespaces.
    """
    system = platform.system()
    if system == "Darwin":
        return "macOS", "the simulator and the recorded world (network namespaces are Linux-only)"
    if system == "Windows":
        return "Windows", "the simulator and the recorded world; WSL 2 can run the real lab"
    if netns_ok is None:
        netns_ok = probe_netns()[0]
    wsl = "microsoft" in platform.release().lower()
    hub = bool(os.environ.get("JUPYTERHUB_USER") or os.environ.get("JUPYTERHUB_API_TOKEN"))
    container = Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()
    where = ("WSL" if wsl else "a JupyterHub single-user server" if hub else
             "a container" if container else "Linux")
    if netns_ok and is_root():
        return f"{where}, as root", ("all three worlds; the real lab with tcpdump captures, and 'lab up' "
                                     "labs that outlive the command")
    if netns_ok:
        return (f"{where}, as an ordinary user", "all three worlds; the real lab runs rootless, inside a user "
                "namespace of this process (p2plab's own capturer; no 'lab up')")
    return (f"{where}, without the real lab", "the simulator and the recorded world: every real-lab cell loads "
            "its recording and says why")


def _tool_rows() -> list[Row]:
    from . import systools

    rows = []
    for tool, pkg in TOOLS.items():
        path = chromium_path() if tool == "chromium" else which(tool)
        purpose = TOOL_PURPOSE[tool]
        rows.append(Row("tool", tool, OK, f"{path} - {purpose}") if path
                    else Row("tool", tool, MISSING, f"not found - {purpose}", systools.install_fix([pkg])))
    return rows


def _extension_rows() -> list[Row]:
    rows = []
    widgets_version = package_version("jupyterlab_widgets")
    widgets_dir = find_labextension("@jupyter-widgets/jupyterlab-manager")
    if widgets_version and widgets_dir:
        rows.append(Row("extension", "ipywidgets", OK, f"jupyterlab_widgets {widgets_version} ({widgets_dir})"))
    else:
        what = "jupyterlab_widgets is not installed" if not widgets_version else "its labextension folder is missing"
        rows.append(Row("extension", "ipywidgets", MISSING, f"{what}: widgets will not draw in JupyterLab",
                        "python -m pip install jupyterlab_widgets   (then restart JupyterLab)"))
    plotly_version = package_version("plotly")
    plotly_dir = find_labextension("jupyterlab-plotly")
    if plotly_dir:
        rows.append(Row("extension", "plotly", OK, f"jupyterlab-plotly ({plotly_dir})"))
    else:
        what = "plotly is not installed" if not plotly_version else "plotly's labextension folder is missing"
        rows.append(Row("extension", "plotly", MISSING, f"{what}: figures may not draw in JupyterLab",
                        "python -m pip install --force-reinstall plotly   (then restart JupyterLab)"))
    return rows


def _world_rows() -> list[Row]:
    from .world import capabilities

    rows = []
    for status in capabilities(refresh=True).values():
        rows.append(Row("world", status.name, OK if status.available else NO, status.reason, status.enable))
    return rows


CHECKS: tuple[tuple[str, str, Callable[[], Iterable[Row]]], ...] = (
    ("python", "Python", _python_rows),
    ("package", "packages", _package_rows),
    ("system", "system", _system_rows),
    ("tool", "tools", _tool_rows),
    ("extension", "JupyterLab extensions", _extension_rows),
    ("world", "worlds", _world_rows),
)


def report() -> list[Row]:
    """Every check, in a fixed order; worlds last. Never raises."""
    rows: list[Row] = []
    for section, name, probe in CHECKS:
        rows += _safe(section, name, probe)
    return rows


SECTION_TITLES = {
    "python": "Python", "package": "Packages", "system": "System", "tool": "Tools",
    "extension": "JupyterLab extensions", "world": "Worlds this machine can run",
}


def render(rows: list[Row] | None = None) -> str:
    """The report as a plain-text table, with a 'fix:' line under each row that has a fix."""
    rows = report() if rows is None else rows
    width = max([len(r.name) for r in rows] + [10])
    lines = ["p2plab doctor - what this machine can do for the course", ""]
    section = None
    for r in rows:
        if r.section != section:
            if section is not None:
                lines.append("")
            section = r.section
            lines.append(SECTION_TITLES.get(section, section))
        mark = {OK: "ok", INFO: "  ", MISSING: "--", NO: "no", ERROR: "!!"}.get(r.status, r.status)
        lines.append(f"  [{mark}] {r.name:<{width}}  {r.detail}")
        if r.fix:
            lines.append(f"       {'':<{width}}  fix: {r.fix}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- CLI
def _main(args) -> int:
    rows = report()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(render(rows))
    return 0


def register(subparsers) -> None:
    """Add ``doctor`` to ``python -m p2plab``."""
    p = subparsers.add_parser(
        "doctor", help="check this machine: versions, tools, permissions, and which worlds it can run",
        description="Check Python, packages, root, network namespaces, tools and JupyterLab extensions, "
                    "and say which of the course's worlds (sim, netns, recorded) this machine can run, "
                    "with the command that enables each missing one.")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.set_defaults(func=_main)
