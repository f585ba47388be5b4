from p2plab.checks import nat_table

from _lab_solutions import solution

S = solution("02-nat-table")
Nat = S["Nat"]


def test_right_answer_passes():
    assert nat_table.check_nat(Nat, quiet=True).passed
    assert nat_table.check_nat_in_simulator(Nat, quiet=True).passed


def test_stub_is_not_started():
    class Stub(Nat):
        def mapping_key(self, inside, remote):
            raise NotImplementedError()

    assert nat_table.check_nat(Stub, quiet=True).not_started


def _variant(**methods):
    return type("Variant", (Nat,), methods)


def test_typical_mistakes_get_their_hints():
    cases = [
        (_variant(mapping_key=lambda self, i, r: (i,)), "reused outside port 40000",
         "one outside port per destination ADDRESS"),
        (_variant(mapping_key=lambda self, i, r: (i, r)), "a new outside port", "keeps ONE outside port"),
        (_variant(mapping_key=lambda self, i, r: (i[1],)), "already belongs to", "no other mapping uses"),
        (_variant(inbound=lambda self, p, r: self.inside_of.get(p)), "let a stranger", "only ADDRESSES"),
        (_variant(inbound=lambda self, p, r: self.inside_of.get(p) if r in self.sent_to.get(p, ()) else None),
         "dropped", "anyone may send"),
        (_variant(inbound=lambda self, p, r: ("192.168.1.10", 5000) if p in self.inside_of else None),
         "but that mapping belongs to", "owns the outside port"),
    ]
    for cls, *hints in cases:
        r = nat_table.check_nat(cls, quiet=True)
        assert not r.passed
        for h in hints:
            assert h in r.message, (h, r.message)


def test_apd_example_from_the_brief():
    # an "endpoint-independent always" NAT fails on address-dependent first; restrict to APD to see that hint
    bad = _variant(mapping_key=lambda self, i, r: (i, r[0]) if self.mapping != "endpoint-independent" else (i,))
    r = nat_table.check_nat(bad, quiet=True)
    assert "reused outside port 40000" in r.message
    assert "each destination (address AND port) needs its own mapping" in r.message


def test_simulator_detects_a_nat_that_behaves_differently():
    always_ei = _variant(mapping_key=lambda self, i, r: (i,))
    r = nat_table.check_nat_in_simulator(always_ei, quiet=True)
    assert not r.passed and "with p2plab's NAT it fails" in r.message
