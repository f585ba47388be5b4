"""ICE priority math, foundations, pruning and checklist ordering (RFC 8445 sections 5.1, 6.1.2)."""

from __future__ import annotations

import pytest

from p2plab.errors import ConfigurationError
from p2plab.ice import (
    Candidate,
    CandidatePair,
    CheckList,
    candidate_priority,
    compute_foundation,
    pair_priority,
    prune_redundant,
)
from p2plab.ice.checklist import FROZEN, WAITING


def rfc_priority(type_pref: int, local_pref: int, component: int) -> int:
    # RFC 8445 5.1.2.1, written out: (2^24)*(type preference) + (2^8)*(local preference) + (2^0)*(256 - component ID)
    return (2 ** 24) * type_pref + (2 ** 8) * local_pref + (2 ** 0) * (256 - component)


def rfc_pair_priority(g: int, d: int) -> int:
    # RFC 8445 6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)
    return 2 ** 32 * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)


@pytest.mark.parametrize("kind,type_pref", [("host", 126), ("prflx", 110), ("srflx", 100), ("relay", 0)])
def test_candidate_priority_uses_the_rfc_type_preferences(kind, type_pref):
    assert candidate_priority(kind) == rfc_priority(type_pref, 65535, 1)
    assert candidate_priority(kind, local_pref=65534, component=2) == rfc_priority(type_pref, 65534, 2)


def test_known_candidate_priorities():
    assert candidate_priority("host") == 2130706431  # 0x7EFFFFFF
    assert candidate_priority("srflx") == 1694498815
    assert candidate_priority("prflx") == 1862270975
    assert candidate_priority("relay") == 16777215
    assert candidate_priority(126, 0, 256) == 126 << 24


def test_priority_rejects_out_of_range_inputs():
    for bad in ({"kind": "bogus"}, {"kind": 127}, {"kind": "host", "local_pref": 70000},
                {"kind": "host", "component": 0}):
        with pytest.raises(ConfigurationError):
            candidate_priority(**bad)


@pytest.mark.parametrize("g,d", [(2130706431, 1694498815), (1694498815, 2130706431), (16777215, 16777215),
                                 (1862270975, 16777215)])
def test_pair_priority_matches_the_rfc_formula(g, d):
    assert pair_priority(g, d) == rfc_pair_priority(g, d)


def test_pair_priority_is_the_same_number_on_both_sides():
    host, srflx = candidate_priority("host"), candidate_priority("srflx")
    a = Candidate.make("host", ("192.168.1.10", 5000))
    b = Candidate.make("srflx", ("198.51.100.20", 5000), base=("192.168.0.25", 5000))
    alice_view = CandidatePair(a, b)
    bob_view = CandidatePair(b, a)
    assert alice_view.compute_priority(controlling=True) == bob_view.compute_priority(controlling=False)
    assert alice_view.priority == rfc_pair_priority(host, srflx)


def test_foundations_group_by_type_base_and_server():
    f = compute_foundation
    assert f("srflx", "192.168.1.10", "192.0.2.1") == f("srflx", "192.168.1.10", "192.0.2.1")
    assert f("srflx", "192.168.1.10", "192.0.2.1") != f("srflx", "192.168.1.10", "192.0.2.2")
    assert f("srflx", "192.168.1.10", "192.0.2.1") != f("host", "192.168.1.10")
    assert f("host", "192.168.1.10") != f("host", "192.168.1.11")


def test_redundant_srflx_equal_to_host_is_pruned():
    host = Candidate.make("host", ("203.0.113.7", 5000))
    srflx = Candidate.make("srflx", ("203.0.113.7", 5000), base=("203.0.113.7", 5000), server=("192.0.2.1", 3478))
    kept, removed = prune_redundant([host, srflx])
    assert kept == [host]
    assert removed[0][0] is srflx and "redundant" in removed[0][1]


def _checklist():
    lh = Candidate.make("host", ("192.168.1.10", 5000))
    ls = Candidate.make("srflx", ("203.0.113.10", 5000), base=lh.addr, server=("192.0.2.1", 3478))
    lr = Candidate.make("relay", ("192.0.2.1", 50000), server=("192.0.2.1", 3479))
    rh = Candidate.make("host", ("192.168.0.25", 5000))
    rs = Candidate.make("srflx", ("198.51.100.20", 5000), base=rh.addr, server=("192.0.2.1", 3478))
    cl = CheckList(controlling=True)
    cl.form([lh, ls, lr], [rh, rs])
    return cl, (lh, ls, lr, rh, rs)


def test_checklist_is_ordered_by_pair_priority_and_srflx_locals_are_replaced_by_their_base():
    cl, (lh, ls, lr, rh, rs) = _checklist()
    prios = [p.priority for p in cl]
    assert prios == sorted(prios, reverse=True)
    assert all(p.local is not ls for p in cl)  # srflx local -> its base, then the duplicate is pruned
    assert [(p.local, p.remote) for p in cl] == [(lh, rh), (lh, rs), (lr, rh), (lr, rs)]
    assert len(cl.pruned) == 2
    assert cl.pairs[0].priority == rfc_pair_priority(lh.priority, rh.priority)


def test_initial_states_one_waiting_pair_per_foundation():
    cl, _ = _checklist()
    by_foundation: dict[str, list] = {}
    for p in cl:
        by_foundation.setdefault(p.foundation, []).append(p)
    for pairs in by_foundation.values():
        assert pairs[0].state == WAITING
        assert all(p.state == FROZEN for p in pairs[1:])


def test_candidate_sdp_line():
    c = Candidate.make("srflx", ("203.0.113.10", 5000), base=("192.168.1.10", 5000), related=("192.168.1.10", 5000))
    line = c.to_sdp()
    assert f" 1 UDP {c.priority} 203.0.113.10 5000 typ srflx raddr 192.168.1.10 rport 5000" in line
