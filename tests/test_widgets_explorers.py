"""The widgets, driven from Python: set .value, click buttons, read what they show."""

from __future__ import annotations

import pytest

from p2plab.punch import PunchResult
from p2plab.widgets import CostExplorer, NatExplorer, PacketStepper


def bundle_text(out):
    (item,) = out.outputs
    return item["data"]


def test_nat_explorer_punch_symmetric_fails_with_reason():
    ex = NatExplorer(nat_a="port-restricted-cone", nat_b="symmetric")
    assert ex.result is None and ex.figure_out.outputs == ()
    ex.punch_button.click()
    assert isinstance(ex.result, PunchResult) and not ex.result.direct
    assert "NO DIRECT PATH" in ex.outcome.value and "nat-b" in ex.outcome.value
    data = bundle_text(ex.figure_out)
    assert "application/vnd.plotly.v1+json" in data
    assert "(200 packet events, sim world)" in data["text/plain"]  # max_rows=200
    first = ex.text.split("\n")
    assert first[0] == ("No direct path: Bob's NAT gives Bob a new port for every destination, so Alice punches "
                        "a port that Bob's NAT never opened for Alice.")
    assert first[1].startswith("Alice's NAT (port-restricted-cone): one public port for every destination")
    assert first[2].startswith("Bob's NAT (symmetric): a new public port for every destination address and port")
    assert " | " not in ex.outcome.value and "<details>" in ex.outcome.value


def test_nat_explorer_marks_its_result_stale_when_a_control_changes():
    ex = NatExplorer(nat_a="port-restricted-cone", nat_b="symmetric", auto=True)
    assert not ex.stale and "NO DIRECT PATH" in ex.outcome.value
    ex.bob.preset.value = "full-cone"  # the shown result is now for another pair
    assert ex.stale and "NO DIRECT PATH" not in ex.outcome.value and "DIRECT" not in ex.outcome.value
    assert "press Punch" in ex.outcome.value and "bob behind symmetric" in ex.outcome.value
    assert "p2plab-stale" in ex.figure_out._dom_classes and ex.text.startswith("Settings changed")
    ex.punch_button.click()
    assert not ex.stale and ex.result.direct and "p2plab-stale" not in ex.figure_out._dom_classes
    assert ex.text.startswith("Direct path: Alice and Bob punched through in ")
    ex.seed.value = 5
    assert ex.stale


def test_nat_explorer_presets_and_custom_knobs():
    ex = NatExplorer()
    ex.bob.preset.value = "full-cone"
    assert (ex.bob.mapping.value, ex.bob.filtering.value) == ("endpoint-independent", "endpoint-independent")
    ex.punch_button.click()
    assert ex.result.direct and "DIRECT PATH" in ex.outcome.value and "ms" in ex.outcome.value
    ex.bob.mapping.value = "address-and-port-dependent"  # leave the preset: custom
    assert ex.bob.preset.value == "custom"
    b = ex.bob.behavior()
    assert (b.mapping, b.filtering, b.name) == ("address-and-port-dependent", "endpoint-independent", "custom APDM+EIF")
    ex.seed.value = 3
    ex.punch_button.click()
    assert ex.result.nat_b == "custom APDM+EIF"
    for w in (ex.alice.preset, ex.alice.mapping, ex.bob.filtering, ex.seed):
        assert w.description  # keyboard and screen-reader users get a label


def test_nat_explorer_with_injected_runner_and_error():
    calls = []

    def runner(a, b, seed=0):
        calls.append((a.name, b.name, seed))
        raise ValueError("simulator exploded")

    ex = NatExplorer(runner=runner)
    with pytest.raises(ValueError):
        ex.punch()
    assert calls == [("port-restricted-cone", "symmetric", 0)]
    assert "simulator exploded" in ex.outcome.value and not ex.punch_button.disabled


def test_packet_stepper_forward_back_and_followers():
    from p2plab.punch import run_punch

    res = run_punch("port-restricted-cone", "port-restricted-cone")
    st = PacketStepper(res)
    assert st.row.value == 0 and st.back.disabled
    st.forward.click()
    st.forward.click()
    assert st.row.value == 2
    assert "nat-a" in st.caption.value and "translated" in st.caption.value
    assert "Highlighted row 2" in bundle_text(st.ladder_out)["text/plain"]
    spec = bundle_text(st.ladder_out)["application/vnd.plotly.v1+json"]
    (here,) = [t for t in spec["data"] if t.get("name") == "row 2 is here"]
    ticks = [t.split("<br>")[0] for t in spec["layout"]["xaxis"]["ticktext"]]
    assert ticks[here["x"][0]] == "<b>nat-a</b>"  # row 2 is nat-a translating alice's first packet
    assert list(st.table["inside"]) == ["192.168.1.10:5000"]
    nat_html = bundle_text(st.nat_out)["text/html"]
    assert "203.0.113.10:5000" in nat_html
    insp = bundle_text(st.inspector_out)
    assert "<mark" in insp["text/html"] and "IP source address" in insp["text/plain"]
    st.back.click()
    assert st.row.value == 1
    st.row.value = len(res.trace) - 1
    assert st.forward.disabled
    st.forward.click()
    assert st.row.value == len(res.trace) - 1
    assert st.tabs.get_title(0) == "NAT tables"


def test_cost_explorer_sliders():
    ce = CostExplorer()
    assert "2 Gbit/s in and 2 Gbit/s out" in ce.result_html.value
    assert "$32,400 per month" in ce.result_html.value
    ce.relayed.value = 0.1
    assert ce.cost.monthly_cost == pytest.approx(3240.0)
    ce.price.value = 0.01
    ce.users.value = 2000
    assert ce.cost.monthly_cost == pytest.approx(2000 * 0.1 * 2 * 1e6 / 8 * 30 * 86400 / 1e9 * 0.01)
    assert "Relay cost." in bundle_text(ce.figure_out)["text/plain"]
    for w in (ce.users, ce.bitrate, ce.price, ce.relayed):
        assert w.description
