"""The doctor (``python -m p2plab doctor``) and world choice (``p2plab.world``).

The doctor must report on any machine and never crash, whatever is missing; the world chooser
must always find a world (sim runs everywhere) and say which one, in a sentence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from p2plab import doctor, systools, world
from p2plab.errors import ConfigurationError, LabUnavailableError, P2PLabError

SECTIONS = ["python", "package", "system", "tool", "extension", "world"]


@pytest.fixture(autouse=True)
def fresh_world_cache():
    from p2plab.netns import lab

    world._cache = None
    lab.forget()
    yield
    world._cache = None
    lab.forget()


def names(rows, section):
    return [r.name for r in rows if r.section == section]


def test_report_has_every_section_in_order_and_worlds_last():
    rows = doctor.report()
    seen = []
    for r in rows:
        if r.section not in seen:
            seen.append(r.section)
    assert seen == SECTIONS
    assert names(rows, "package") == list(doctor.PACKAGES)
    assert names(rows, "tool") == list(doctor.TOOLS)
    assert names(rows, "extension") == ["ipywidgets", "plotly"]
    assert names(rows, "world") == ["sim", "netns", "recorded"]
    assert all(r.status in ("ok", "missing", "no", "info", "error") for r in rows)


def test_sim_world_is_always_available():
    rows = {r.name: r for r in doctor.report() if r.section == "world"}
    assert rows["sim"].status == "ok"


def test_every_unavailable_thing_says_how_to_fix_it():
    for r in doctor.report():
        if r.status in ("missing", "no"):
            assert r.fix, f"row {r.name!r} is {r.status} but gives no command to fix it"


def test_versions_come_from_metadata_not_imports():
    code = ("import sys, p2plab.doctor as d; d.report(); "
            "print(sorted(m for m in ('scapy', 'pandas', 'plotly', 'jupyterlab', 'ipywidgets', 'nbval') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_render_is_a_table_with_fix_lines():
    rows = [doctor.Row("tool", "nft", "missing", "not found", "sudo apt-get install nftables"),
            doctor.Row("world", "sim", "ok", "pure Python")]
    text = doctor.render(rows)
    assert "Tools" in text and "Worlds this machine can run" in text
    assert "[--] nft" in text
    assert "fix: sudo apt-get install nftables" in text
    assert "[ok] sim" in text


def test_nothing_installed_still_reports(monkeypatch):
    """No tools anywhere, no packages: every row still comes back, with fixes that work for this user."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(systools, "SBIN_DIRS", ())

    def no_package(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor.metadata, "version", no_package)
    monkeypatch.setattr(doctor, "find_labextension", lambda name: None)
    monkeypatch.setattr(doctor, "recorded_pcaps", lambda: [])
    rows = doctor.report()
    by = {(r.section, r.name): r for r in rows}
    assert by[("package", "scapy")].status == "missing"
    assert by[("tool", "nft")].fix == systools.install_fix(["nftables"])
    assert by[("tool", "turnserver")].fix == systools.install_fix(["coturn"])
    assert by[("extension", "ipywidgets")].status == "missing"
    assert by[("world", "sim")].status == "ok"
    assert by[("world", "netns")].status == "no"
    assert "nftables" in by[("world", "netns")].fix and "not installed" in by[("world", "netns")].detail
    assert by[("world", "recorded")].status == "no"
    assert by[("world", "recorded")].fix
    assert doctor.render(rows)


def test_the_fix_for_a_missing_tool_suits_the_user(monkeypatch):
    monkeypatch.setattr(systools, "is_root", lambda: True)
    assert systools.install_fix(["nftables"]) == "apt-get install nftables"  # (this machine has apt-get)
    monkeypatch.setattr(systools, "is_root", lambda: False)
    fix = systools.install_fix(["nftables", "conntrack"])
    assert fix.startswith("ask the administrator") and "nftables conntrack" in fix and "recorded world" in fix
    assert "sudo" not in fix and "apt" not in fix  # an ordinary user cannot run either


def test_tools_in_sbin_are_found_without_sbin_on_path(monkeypatch, tmp_path):
    """Debian puts nft, tc and conntrack in /usr/sbin, which an ordinary user's PATH leaves out."""
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    tool = sbin / "p2plab-fake-nft"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(systools, "SBIN_DIRS", (str(sbin),))
    assert systools.find("p2plab-fake-nft") == str(tool)
    assert systools.resolve(["p2plab-fake-nft", "list", "tables"]) == [str(tool), "list", "tables"]
    assert systools.resolve(["no-such-tool-here", "x"]) == ["no-such-tool-here", "x"]
    with pytest.raises(LabUnavailableError, match="'no-such-tool-here'"):
        systools.require("no-such-tool-here")


def test_a_probe_that_explodes_becomes_an_error_row(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor, "probe_netns", boom)
    monkeypatch.setattr(doctor, "package_version", boom)
    rows = doctor.report()  # must not raise
    errors = [r for r in rows if r.status == "error"]
    assert errors and all("kaboom" in r.detail for r in errors)
    assert {r.section for r in rows} == set(SECTIONS)
    assert world.capabilities(refresh=True)["netns"].available is False


def _probe_with(monkeypatch, *, root: bool, results: dict[str, tuple[int, str]]):
    """Run the lab's real probe, with the commands it runs answering as ``results`` says (by program)."""
    from p2plab.netns import lab, rootless

    monkeypatch.setattr(rootless, "wanted", lambda: not root)
    monkeypatch.setattr(doctor, "is_root", lambda: root)
    monkeypatch.setattr(systools, "find", lambda tool: f"/usr/sbin/{tool}")

    def fake_run(argv, **kwargs):
        line = " ".join(map(str, argv))
        key = next((k for k in results if k in line), None)
        code, err = results.get(key, (0, ""))
        return subprocess.CompletedProcess(argv, code, "", err)

    monkeypatch.setattr(lab.subprocess, "run", fake_run)
    monkeypatch.setattr(rootless.subprocess, "run", fake_run)
    monkeypatch.setattr(rootless, "holder", lambda: None)
    monkeypatch.setattr(rootless, "wrap", lambda argv: list(argv))
    lab.forget()
    try:
        return world.capabilities(refresh=True)["netns"]
    finally:
        lab.forget()


def test_rootless_without_user_namespaces_says_which_sysctl(monkeypatch):
    from p2plab.netns import rootless

    monkeypatch.setattr(doctor, "_read_sysctl", lambda path: "0" if path.endswith("unprivileged_userns_clone") else None)
    monkeypatch.setattr(rootless, "userns_refusal", lambda err: f"this kernel has unprivileged user namespaces "
                                                                f"switched off (unshare said: {err.strip()})")
    status = _probe_with(monkeypatch, root=False,
                         results={"unshare": (1, "unshare: unshare failed: Operation not permitted")})
    assert not status.available
    assert "Operation not permitted" in status.reason and "switched off" in status.reason
    assert "sudo sysctl -w kernel.unprivileged_userns_clone=1" in status.enable
    assert "recorded world" in status.enable


def test_an_ordinary_user_in_a_container_that_forbids_user_namespaces(monkeypatch):
    status = _probe_with(monkeypatch, root=False,
                         results={"unshare": (1, "unshare: unshare failed: Operation not permitted")})
    assert not status.available and "refuses to let an ordinary user create user namespaces" in status.reason
    assert "apt-get" not in status.enable and "sysctl" not in status.enable and "administrator" in status.enable


def test_root_without_nft_is_told_the_package(monkeypatch):
    monkeypatch.setattr(systools, "find", lambda tool: None if tool == "nft" else f"/usr/sbin/{tool}")
    from p2plab.netns import lab, rootless

    monkeypatch.setattr(rootless, "wanted", lambda: False)
    lab.forget()
    status = world.capabilities(refresh=True)["netns"]
    lab.forget()
    assert not status.available and "nft is not installed" in status.reason
    assert status.enable == systools.install_fix(["nftables"])


def test_root_in_an_unprivileged_container(monkeypatch):
    status = _probe_with(monkeypatch, root=True,
                         results={"netns add": (1, "mount --make-shared /run/netns failed: Operation not permitted")})
    assert not status.available and "'ip netns add' failed" in status.reason and "--privileged" in status.enable


def test_a_kernel_without_nftables_in_namespaces(monkeypatch):
    status = _probe_with(monkeypatch, root=True, results={"list": (1, "Error: Could not process rule")})
    assert not status.available and "nftables does not work inside a network namespace" in status.reason


def test_recorded_world_needs_scapy_or_pcaps(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "package_version", lambda dist: None)
    monkeypatch.setattr(doctor, "recorded_pcaps", lambda: [])
    assert not world.capabilities(refresh=True)["recorded"].available
    monkeypatch.setattr(doctor, "recorded_pcaps", lambda: [tmp_path / "punch.pcap"])
    assert world.capabilities(refresh=True)["recorded"].available


def test_choose_sim_is_the_same_everywhere(monkeypatch):
    monkeypatch.delenv(world.ENV_VAR, raising=False)
    choice = world.choose_world()
    assert choice.name == "sim" and choice.preferred == "sim" and not choice.fell_back
    assert str(choice) == ("This notebook runs in the simulated world (p2plab.sim: a deterministic network "
                           "inside Python). Every run gives the same packets, on every machine.")


def test_choose_netns_falls_back_to_recorded_then_sim(monkeypatch):
    monkeypatch.delenv(world.ENV_VAR, raising=False)
    caps = {
        "sim": world.WorldStatus("sim", True, "pure Python"),
        "netns": world.WorldStatus("netns", False, "not root", "sudo make lab"),
        "recorded": world.WorldStatus("recorded", True, "scapy"),
    }
    monkeypatch.setattr(world, "capabilities", lambda refresh=False: caps)
    choice = world.choose_world("netns")
    assert choice.name == "recorded" and choice.fell_back and choice.reason == "not root"
    assert "cannot run it (not root)" in choice.sentence and "sudo make lab" in choice.sentence
    caps["recorded"] = world.WorldStatus("recorded", False, "no scapy", "pip install scapy")
    assert world.choose_world("netns").name == "sim"


def test_environment_variable_chooses_what_real_lab_cells_do(monkeypatch):
    monkeypatch.setenv(world.ENV_VAR, "recorded")
    monkeypatch.setattr(world, "capabilities", lambda refresh=False: {
        n: world.WorldStatus(n, True, "yes") for n in world.WORLDS})
    assert world.choose_world("netns").name == "recorded"
    assert world.choose_world("sim").name == "sim"  # simulated cells stay simulated


@pytest.mark.parametrize("bad", ["real", "simulation", 3, None])
def test_unknown_world_is_a_friendly_error(monkeypatch, bad):
    monkeypatch.delenv(world.ENV_VAR, raising=False)
    with pytest.raises(ConfigurationError) as info:
        world.choose_world(bad)
    assert isinstance(info.value, P2PLabError)
    msg = str(info.value)
    assert repr(bad) in msg and "'sim'" in msg and "choose_world('sim')" in msg


def test_cli_doctor_table_and_json():
    cmd = [sys.executable, "-m", "p2plab", "doctor"]
    table = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "Worlds this machine can run" in table.stdout
    as_json = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert {"section", "name", "status", "detail", "fix"} <= set(rows[0])
    assert [r["name"] for r in rows if r["section"] == "world"] == ["sim", "netns", "recorded"]


def test_doctor_leaves_no_namespace_behind():
    from p2plab.netns import cleanup, lab

    lab.forget()
    doctor.report()
    left = [n for n in cleanup.list_netns() if n.startswith(("p2plab-probe-", "p2plab-doctor-"))]
    assert not left


def test_the_doctor_and_punch_never_disagree():
    """What the doctor says of the netns world is what ``punch --world netns`` does, on every machine;
    the CI runs (root, ordinary user, no namespaces) also say which verdict to expect."""
    env = {**os.environ}
    env.pop("P2PLAB_ROOTLESS", None)
    doc = subprocess.run([sys.executable, "-m", "p2plab", "doctor", "--json"], capture_output=True, text=True,
                         timeout=120, env=env)
    netns = next(r for r in json.loads(doc.stdout) if r["section"] == "world" and r["name"] == "netns")
    punch = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "netns", "--format", "json",
                            "--nat-a", "port-restricted-cone", "--nat-b", "port-restricted-cone"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in punch.stderr + punch.stdout
    if netns["status"] == "ok":
        assert punch.returncode == 0, punch.stderr
        assert json.loads(punch.stdout)["direct"] is True
    else:
        assert punch.returncode != 0
        said = (punch.stderr + punch.stdout).strip()
        assert said.count("\n") == 0 and netns["detail"] in said  # one sentence, the doctor's reason
    expect = os.environ.get("P2PLAB_EXPECT_NETNS")
    if expect:
        assert netns["status"] == ("ok" if expect == "yes" else "no"), netns


@pytest.mark.parametrize("system, release, env, root, ok, kind, gets", [
    ("Darwin", "23.1", {}, False, False, "macOS", "recorded world"),
    ("Linux", "5.15.90.1-microsoft-standard-WSL2", {}, False, True, "WSL, as an ordinary user", "rootless"),
    ("Linux", "6.1.0", {"JUPYTERHUB_USER": "ada"}, False, False, "a JupyterHub single-user server, without the real lab",
     "loads its recording"),
    ("Linux", "6.1.0", {}, True, True, "as root", "'lab up'"),
])
def test_the_doctor_names_the_kind_of_machine(monkeypatch, system, release, env, root, ok, kind, gets):
    monkeypatch.setattr(doctor.platform, "system", lambda: system)
    monkeypatch.setattr(doctor.platform, "release", lambda: release)
    monkeypatch.setattr(doctor, "is_root", lambda: root)
    for key in ("JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got_kind, got_gets = doctor.machine_kind(ok)
    assert kind in got_kind and gets in got_gets


def test_the_tun_device_row_says_whether_tayga_can_run_and_how_to_allow_it(monkeypatch):
    """Lesson 14's NAT64 needs /dev/net/tun; the doctor tells the same story as the lab's refusal."""
    import platform

    from p2plab.netns import nat64lab

    if platform.system() != "Linux":
        assert "tun device" not in names(doctor.report(), "system")
        return
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if p == "/dev/net/tun" else real_access(p, m))
    row = next(r for r in doctor._system_rows() if r.name == "tun device")
    assert row.status == "no" and "chmod 0666 /dev/net/tun" in row.fix
    with pytest.raises(LabUnavailableError, match="chmod 0666 /dev/net/tun"):
        nat64lab.run_nat64()
    monkeypatch.setattr(os, "access", lambda p, m: True if p == "/dev/net/tun" else real_access(p, m))
    expected = "ok" if os.path.exists("/dev/net/tun") else "no"  # no device at all: the tun module is not loaded
    assert next(r for r in doctor._system_rows() if r.name == "tun device").status == expected
