"""The doctor (``python -m p2plab doctor``) and world choice (``p2plab.world``).

The doctor must report on any machine and never crash, whatever is missing; the world chooser
must always find a world (sim runs everywhere) and say which one, in a sentence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from p2plab import doctor, world
from p2plab.errors import ConfigurationError, P2PLabError

SECTIONS = ["python", "package", "system", "tool", "extension", "world"]


@pytest.fixture(autouse=True)
def fresh_world_cache():
    world._cache = None
    yield
    world._cache = None


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
    """No tools on PATH, no packages, no subprocesses: every row still comes back, with fixes."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(doctor, "EXTRA_BIN_DIRS", ())

    def no_package(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor.metadata, "version", no_package)
    monkeypatch.setattr(doctor, "find_labextension", lambda name: None)
    monkeypatch.setattr(doctor, "recorded_pcaps", lambda: [])
    rows = doctor.report()
    by = {(r.section, r.name): r for r in rows}
    assert by[("package", "scapy")].status == "missing"
    assert by[("tool", "nft")].fix == "sudo apt-get install nftables"
    assert by[("tool", "turnserver")].fix == "sudo apt-get install coturn"
    assert by[("extension", "ipywidgets")].status == "missing"
    assert by[("world", "sim")].status == "ok"
    assert by[("world", "netns")].status == "no"
    assert "nftables" in by[("world", "netns")].fix
    assert by[("world", "recorded")].status == "no"
    assert by[("world", "recorded")].fix
    assert doctor.render(rows)


def test_a_probe_that_explodes_becomes_an_error_row(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor.subprocess, "run", boom)
    monkeypatch.setattr(doctor, "package_version", boom)
    rows = doctor.report()  # must not raise
    errors = [r for r in rows if r.status == "error"]
    assert errors and all("kaboom" in r.detail for r in errors)
    assert {r.section for r in rows} == set(SECTIONS)


def test_rootless_without_user_namespaces_says_which_sysctl(monkeypatch):
    monkeypatch.setattr(doctor, "is_root", lambda: False)
    monkeypatch.setattr(doctor, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(doctor, "probe_rootless_netns", lambda: (False, "unshare -rn failed: Operation not permitted"))
    monkeypatch.setattr(doctor, "_read_sysctl", lambda path: "0" if path.endswith("unprivileged_userns_clone") else None)
    status = world.capabilities(refresh=True)["netns"]
    assert not status.available
    assert "Operation not permitted" in status.reason
    assert "sudo sysctl -w kernel.unprivileged_userns_clone=1" in status.enable
    assert doctor.RUN_AS_ROOT in status.enable


def test_root_without_nft_says_apt_get_install_nftables(monkeypatch):
    monkeypatch.setattr(doctor, "is_root", lambda: True)
    monkeypatch.setattr(doctor, "which", lambda tool: None if tool == "nft" else f"/usr/sbin/{tool}")
    monkeypatch.setattr(doctor, "probe_root_netns", lambda: (True, "ip netns add worked"))
    status = world.capabilities(refresh=True)["netns"]
    assert not status.available
    assert status.enable == "sudo apt-get install nftables"


def test_root_in_an_unprivileged_container(monkeypatch):
    monkeypatch.setattr(doctor, "is_root", lambda: True)
    monkeypatch.setattr(doctor, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(doctor, "probe_root_netns", lambda: (False, "ip netns add failed: Operation not permitted"))
    status = world.capabilities(refresh=True)["netns"]
    assert not status.available and "--privileged" in status.enable


def test_rootless_with_user_namespaces_runs_netns(monkeypatch):
    monkeypatch.setattr(doctor, "is_root", lambda: False)
    monkeypatch.setattr(doctor, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(doctor, "probe_rootless_netns", lambda: (True, "unshare --user ... worked"))
    status = world.capabilities(refresh=True)["netns"]
    assert status.available and status.reason.startswith("rootless")


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
    if not doctor.is_root() or doctor.which("ip") is None:
        pytest.skip("only root can list and create named network namespaces")
    doctor.report()
    listing = subprocess.run([doctor.which("ip"), "netns", "list"], capture_output=True, text=True).stdout
    assert "p2plab-doctor-" not in listing
