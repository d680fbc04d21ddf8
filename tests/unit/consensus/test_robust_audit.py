"""Selection from a Gram matrix (node/consensus/robust_audit.py) against the clear rules run on the
updates themselves, the audit recompute, and the sum check that catches a tampered entry."""

from __future__ import annotations

import numpy as np
import pytest

from node.consensus.robust_audit import (
    audit_selection,
    check_sum,
    distances_from_gram,
    select_from_gram,
)
from node.consensus.rules import make_rule


def _round(n: int, d: int, seed: int, poison: int = 1) -> np.ndarray:
    """Honest updates around a common direction, ``poison`` sign-flipped and scaled ones last."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, d)
    x = base + rng.normal(0, 0.5, (n, d))
    x[n - poison :] = -4.0 * base
    return x[rng.permutation(n)]


@pytest.mark.parametrize("rule", ["krum", "multi-krum"])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_selection_from_gram_matches_the_clear_rule(rule, clip, seed):
    x = _round(9, 300, seed, poison=2)
    got = select_from_gram(rule, x @ x.T, f=2, clip=clip)  # BLAS Gram: not the rules' own reduction
    assert got.accepted == make_rule(rule, 2, clip=clip).select(x)
    norms = np.linalg.norm(x, axis=1)
    want = np.minimum(1.0, np.median(norms) / norms) if clip else np.ones(9)
    assert got.scales == pytest.approx(want, rel=1e-12)


def test_distances_from_gram_and_tie_break():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [1.0, 0.0], [1.0, 0.0]])
    assert distances_from_gram(x @ x.T) == pytest.approx(((x[:, None] - x[None]) ** 2).sum(-1))
    # rows 0, 1, 3, 4 are identical: Krum's best is the lowest index; Multi-Krum drops the outlier
    assert select_from_gram("krum", x @ x.T, f=1).accepted == [0]
    assert select_from_gram("multi-krum", x @ x.T, f=1).accepted == [0, 1, 3, 4]


def test_rules_that_need_the_updates_are_refused():
    x = _round(7, 20, 0)
    with pytest.raises(ValueError, match="needs the updates themselves"):
        select_from_gram("median", x @ x.T)
    with pytest.raises(ValueError, match="square matrix of finite values or NaN"):
        select_from_gram("krum", np.ones((3, 4)))


def test_out_of_range_members_count_as_farthest_and_are_never_accepted():
    """The key holder publishes NaN for an inner product beyond the scalar bound: that row is never
    accepted and counts as farther than any readable row, so the rule runs over all n rows as the
    clear rule does on real updates, where one beyond the bound lies far from the others.
    Reference: the clear rule with that row replaced by a far-away update (norm bounding: numpy's
    median-norm factors on the readable rows; the unreadable one cannot be scaled)."""
    x = _round(8, 60, 4)
    far = x.copy()
    far[5] = 1e4  # far beyond every other row, as an update beyond the scalar bound is
    g = x @ x.T
    g[5, :] = g[:, 5] = np.nan
    g[5, 2] = g[2, 5] = 1.0  # a stray in-range entry in the row does not bring it back
    for rule, f in [("krum", 1), ("krum", 2), ("multi-krum", 1), ("multi-krum", 2)]:
        got = select_from_gram(rule, g, f=f)
        assert got.out_of_range == (5,) and got.scales[5] == 0.0
        assert got.accepted == make_rule(rule, f).select(far), (rule, f)
    rest = [i for i in range(8) if i != 5]
    norms = np.linalg.norm(x[rest], axis=1)
    clipped = far.copy()
    clipped[rest] = x[rest] * np.minimum(1.0, np.median(norms) / norms)[:, None]
    got = select_from_gram("multi-krum", g, f=1, clip=True)
    assert got.accepted == make_rule("multi-krum", 1).select(clipped)
    wrapped = x @ x.T
    wrapped[3, 3] = -1000.0  # a squared norm that wrapped around the modulus to a negative value
    assert select_from_gram("multi-krum", wrapped, f=1).out_of_range == (3,)
    with pytest.raises(ValueError, match="needs at least 5 updates in range; 0 of 5 are"):
        select_from_gram("multi-krum", np.where(np.eye(5) > 0, np.nan, 1.0), f=1)
    with pytest.raises(ValueError, match="finite values or NaN"):
        select_from_gram("krum", np.full((5, 5), np.inf))


def test_audit_recomputes_the_accepted_set():
    x = _round(7, 50, 3)
    members = [f"0x{i:040x}" for i in range(7)]
    accepted = [members[i] for i in make_rule("multi-krum", 1).select(x)]
    audit_selection("multi-krum", x @ x.T, members, accepted, f=1)
    poisoner = next(m for m in members if m not in accepted)
    forged = sorted(accepted[1:] + [poisoner])
    with pytest.raises(ValueError, match="the record says"):
        audit_selection("multi-krum", x @ x.T, members, forged, f=1)


@pytest.mark.parametrize("clip", [False, True])
def test_sum_check_catches_a_tampered_entry(clip):
    x = _round(7, 400, 5)
    g = x @ x.T
    sel = select_from_gram("multi-krum", g, f=1, clip=clip)
    total = (x[sel.accepted] * sel.scales[sel.accepted, None]).sum(0)
    check_sum(total, g, sel)
    # an aggregator lowers one accepted pair's distance by raising its inner product by 1%
    a, b = sel.accepted[:2]
    bad = g.copy()
    bad[a, b] = bad[b, a] = g[a, b] + 0.01 * abs(g[a, b]) + 1e-3
    with pytest.raises(ValueError, match="tampered"):
        check_sum(total, bad, sel)
