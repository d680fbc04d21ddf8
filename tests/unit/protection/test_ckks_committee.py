"""ckks with an aggregation committee (issue 19, docs/secagg.md "ckks with a committee"): the
roles are drawn among the round's seats only, the robust variant is refused in one line, and
a coalition of c of k seats holds both roles with probability c(c - 1) / (k(k - 1))."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from scipy import stats

from ledger import Identity
from node.consensus.committee import CommitteeError
from node.crypto.ckks.scheme import CKKSError
from node.protection import check_committee, committee_refusal
from node.protection.ckks_mode import CkksMode, draw_roles


def member(i: int) -> Identity:
    return Identity(f"0x{i:040x}", b"\0" * 32, f"peer{i}", b"\0" * 32, b"\0" * 32, "active", 0)


MEMBERS = [member(i) for i in range(1, 7)]


def eligible(committee=None, draw_committee=None) -> list[str]:
    """:meth:`CkksMode._eligible` over ``MEMBERS`` with the given committee callables."""
    ctx = SimpleNamespace(
        committee=committee, draw_committee=draw_committee, members=lambda: MEMBERS
    )
    return [m.address for m in CkksMode._eligible(SimpleNamespace(ctx=ctx), 3)]


def test_roles_are_drawn_among_the_seats_or_every_member_without_a_committee() -> None:
    seats = frozenset(m.address for m in MEMBERS[1:5])
    assert eligible(draw_committee=lambda r: seats) == [m.address for m in MEMBERS[1:5]]
    assert eligible(committee=lambda r: seats) == [m.address for m in MEMBERS[1:5]]
    assert eligible(committee=lambda r: None) == [m.address for m in MEMBERS]
    assert eligible() == [m.address for m in MEMBERS]


def test_a_committee_not_drawn_yet_is_no_draw_not_every_member() -> None:
    def not_yet(round_: int):
        raise CommitteeError(f"the committee of round {round_} is not drawn yet (no beacon)")

    with pytest.raises(CKKSError, match="no role draw for round 3: .*not drawn yet"):
        eligible(committee=lambda r: None, draw_committee=not_yet)


@pytest.mark.parametrize("rule", ["krum", "multi-krum"])
def test_robust_ckks_with_a_committee_is_refused_in_one_line(rule: str) -> None:
    with pytest.raises(ValueError, match=f"ckks with {rule} does not run with a committee") as err:
        check_committee("ckks", 4, 6, rule=rule)
    assert "\n" not in str(err.value)
    for k in (0, 6, 7):  # every member aggregates: nothing changes
        check_committee("ckks", k, 6, rule=rule)
    for protection in ("sealed", "secagg", "ckks"):
        assert committee_refusal(protection, "fedavg") is None
        check_committee(protection, 4, 6)


def test_a_coalition_holds_both_roles_with_probability_c_c_minus_1_over_k_k_minus_1() -> None:
    seats, coalition, draws = MEMBERS[:4], {MEMBERS[0].address, MEMBERS[2].address}, 12_000
    both = 0
    for i in range(draws):
        holder, aggregator = draw_roles(hashlib.sha256(i.to_bytes(4, "big")).digest(), seats)
        both += {holder.address, aggregator.address} <= coalition
    c, k = len(coalition), len(seats)
    assert stats.binomtest(both, draws, c * (c - 1) / (k * (k - 1))).pvalue > 1e-4
