"""Properties of the NAT translation table (RFC 4787 behaviours), checked with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2plab.errors import ConfigurationError, UnknownPresetError
from p2plab.nat import AD, APD, EI, NatBehavior, NatTable, classic_name, preset
from p2plab.packet import Datagram

PUBLIC = "203.0.113.10"
octet = st.integers(1, 254)
remote_ip = st.builds(lambda a, b: f"198.51.{a}.{b}", octet, octet)
port = st.integers(1, 65535)
remote = st.tuples(remote_ip, port)


def out(table: NatTable, sport: int, dst: tuple[str, int], now: float = 0.0, src: str = "192.168.1.10") -> Datagram:
    pkt, _ = table.outbound(Datagram(src, sport, dst[0], dst[1], b"x"), now)
    return pkt


@given(st.lists(remote, min_size=2, max_size=12, unique=True), port)
def test_endpoint_independent_mapping_reuses_one_outside_port(remotes, sport):
    table = NatTable(NatBehavior(EI, APD), [PUBLIC])
    outs = {(p.src, p.sport) for p in (out(table, sport, r) for r in remotes)}
    assert len(outs) == 1


@given(st.lists(remote, min_size=2, max_size=12, unique=True), port)
def test_address_and_port_dependent_mapping_gives_each_destination_its_own_port(remotes, sport):
    table = NatTable(NatBehavior(APD, APD, port_allocation="random"), [PUBLIC])
    outs = [out(table, sport, r).sport for r in remotes]
    assert len(set(outs)) == len(remotes)


@given(st.lists(remote, min_size=1, max_size=6, unique=True), remote, port)
def test_apd_filtering_drops_inbound_from_an_unseen_endpoint(seen, stranger, sport):
    table = NatTable(NatBehavior(EI, APD), [PUBLIC])
    mapped = [out(table, sport, r) for r in seen][0]
    reply = Datagram(stranger[0], stranger[1], mapped.src, mapped.sport, b"hi")
    result, reason = table.inbound(reply, 1.0)
    if stranger in seen:
        assert result is not None and result.dport == sport
    else:
        assert result is None
        assert "address-and-port-dependent filtering" in reason


@given(remote, st.integers(1, 65535), port)
def test_address_dependent_filtering_admits_any_port_of_a_seen_address(r, other_port, sport):
    table = NatTable(NatBehavior(EI, AD), [PUBLIC])
    mapped = out(table, sport, r)
    result, _ = table.inbound(Datagram(r[0], other_port, mapped.src, mapped.sport, b"hi"), 1.0)
    assert result is not None


@given(remote, port, st.floats(min_value=120, max_value=3600))
def test_mappings_expire_after_the_timeout_and_outbound_refreshes(r, sport, timeout):
    table = NatTable(NatBehavior(EI, EI, mapping_timeout=timeout), [PUBLIC])
    mapped = out(table, sport, r, now=0.0)
    out(table, sport, r, now=timeout / 2)  # refresh
    alive, _ = table.inbound(Datagram(r[0], r[1], mapped.src, mapped.sport, b""), timeout * 1.4)
    assert alive is not None
    dead, reason = table.inbound(Datagram(r[0], r[1], mapped.src, mapped.sport, b""), timeout * 1.6)
    assert dead is None and "no mapping" in reason
    assert table.expired


def test_port_preservation_falls_back_when_the_port_is_taken():
    table = NatTable(NatBehavior(EI, APD, port_allocation="preserving"), [PUBLIC])
    a = out(table, 5000, ("198.51.100.1", 1), src="192.168.1.10")
    b = out(table, 5000, ("198.51.100.1", 1), src="192.168.1.11")
    assert a.sport == 5000 and b.sport != 5000


def test_presets_have_the_classic_names():
    assert preset("full-cone").classic_name == "full cone"
    assert preset("restricted-cone").classic_name == "restricted cone"
    assert preset("port-restricted-cone").classic_name == "port-restricted cone"
    assert preset("symmetric").classic_name == "symmetric"
    assert classic_name(AD, EI) == "-"
    assert preset("linux-masquerade").mapping == EI and preset("linux-masquerade").filtering == APD


@pytest.mark.parametrize("bad", ["super-cone", "", "cone"])
def test_unknown_presets_name_the_known_ones(bad):
    with pytest.raises(UnknownPresetError, match="Known presets: full-cone"):
        preset(bad)


def test_bad_knobs_are_refused_clearly():
    with pytest.raises(UnknownPresetError, match="RFC 4787 names three"):
        NatBehavior(mapping="sideways")
    with pytest.raises(ConfigurationError, match="at least 120"):
        NatBehavior(mapping_timeout=-5)
