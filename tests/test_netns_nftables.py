"""The nftables rulesets p2plab writes for each NAT behaviour (no root needed)."""

from __future__ import annotations

import pytest

from p2plab.errors import LabUnavailableError, P2PLabError
from p2plab.nat import AD, APD, EI, NatBehavior, preset
from p2plab.netns import nftables
from p2plab.netns.capture import parse_conntrack


def rules(name, **changes):
    return nftables.nat_ruleset(preset(name, **changes), "p2plab-0000-1u", "p2plab-0000-1l", ["203.0.113.10"],
                                "192.168.1.0/24")


def test_every_lab_table_is_named_p2plab():
    for name in nftables_presets():
        assert rules(name).startswith("table ip p2plab-")


def nftables_presets():
    return ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric", "linux-masquerade"]


def test_port_restricted_cone_is_plain_masquerade_with_conntrack_filtering():
    r = rules("port-restricted-cone", hairpinning=False)
    assert "masquerade" in r and "fully-random" not in r
    assert "dnat ip to" not in r  # conntrack alone: address-and-port-dependent filtering
    assert "ct state established,related accept" in r
    assert 'drop comment "unsolicited' in r


def test_symmetric_randomises_ports_in_its_range():
    r = rules("symmetric")
    assert "masquerade to :32768-60999 fully-random" in r


def test_full_and_restricted_cone_use_a_learned_map():
    full, restricted = rules("full-cone", hairpinning=False), rules("restricted-cone", hairpinning=False)
    assert "map eim" in full and "dnat ip to meta l4proto . th dport map @eim" in full
    assert "set adf" not in full
    assert "set adf" in restricted and "@adf dnat" in restricted
    assert "ct original ip saddr . ct original proto-src" in restricted


def test_conntrack_clash_opens_the_input_chain():
    assert 'drop comment "unsolicited' not in rules("linux-masquerade", conntrack_clash=True)


def test_hairpinning_switch():
    assert "hairpinning" in rules("port-restricted-cone", hairpinning=True)
    assert "hairpinning" not in rules("port-restricted-cone", hairpinning=False)


@pytest.mark.parametrize("behavior", [
    NatBehavior(AD, APD, name="ad-mapping"),
    NatBehavior(EI, APD, port_allocation="sequential", name="ei-sequential"),
    NatBehavior(APD, APD, port_allocation="preserving", name="apd-preserving"),
])
def test_behaviours_linux_cannot_build_raise_a_clear_error(behavior):
    with pytest.raises(LabUnavailableError) as exc:
        nftables.check_expressible(behavior)
    assert isinstance(exc.value, P2PLabError)
    assert behavior.name in str(exc.value) and "simulator" in str(exc.value)
    notes = nftables.check_expressible(behavior, approximate=True)
    assert notes and "approximated" in notes[0]


def test_all_presets_are_expressible():
    for name in nftables_presets():
        assert nftables.check_expressible(preset(name)) == []


def test_parse_conntrack_extended_output():
    text = ("ipv4     2 udp      17 29 src=192.168.1.10 dst=192.0.2.1 sport=5000 dport=7000 packets=1 bytes=48 "
            "[UNREPLIED] src=192.0.2.1 dst=203.0.113.10 sport=7000 dport=5000 packets=0 bytes=0 mark=0 use=1\n")
    (e,) = parse_conntrack(text)
    assert e["proto"] == "UDP" and e["timeout"] == 29 and "UNREPLIED" in e["flags"]
    assert e["orig"]["src"] == "192.168.1.10" and e["reply"]["dst"] == "203.0.113.10"
    assert e["reply"]["dport"] == "5000"
