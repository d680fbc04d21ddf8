"""The AggregationRule registry (issue 18 §3): each rule's properties against its paper, Krum's
distance matrix computed once per sealed round, and the wrappers composing with every rule.

References are independent of the code under test: the papers' bounds written out, brute-force
Krum scores with plain NumPy, clipping and bucket means computed here from their definitions.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import trio

import node.consensus.rules.bulyan as bulyan_module
import node.consensus.rules.krum as krum_module
from node.consensus.rules import (
    RULES,
    AggregationRule,
    Bucketed,
    Clipped,
    Outcome,
    make_rule,
    register,
    rule_class,
)
from node.consensus.update import ModelUpdate
from node.peer.pipeline import PeerSettings
from node.protection import check_protection
from node.protection.sealed_mode import SealedMode

# the papers' minimum n tolerating f Byzantine updates
PAPER_MINIMUM = {
    "fedavg": lambda f: 1,
    "median": lambda f: 1,
    "geomed": lambda f: 1,
    "trimmed-mean": lambda f: 2 * f + 1,  # Yin et al. 2018: beta = f/n < 1/2
    "krum": lambda f: 2 * f + 3,  # Blanchard et al. 2017, Prop. 1
    "multi-krum": lambda f: 2 * f + 3,
    "bulyan": lambda f: 4 * f + 3,  # El Mhamdi et al. 2018
    "cclip": lambda f: f + 1,  # tau: the (n - f)-th smallest distance needs n > f
}


def test_every_rule_is_registered_with_its_papers_minimum():
    assert set(RULES) == set(PAPER_MINIMUM)
    for name, cls in RULES.items():
        assert cls.name == name and issubclass(cls, AggregationRule)
        for f in range(4):
            assert cls.min_updates(f) == PAPER_MINIMUM[name](f), (name, f)
    # only a sum serves FedAvg; only FedAvg applies weights
    assert {n for n, c in RULES.items() if not c.needs_individual_updates} == {"fedavg"}
    assert {n for n, c in RULES.items() if c.weighted} == {"fedavg"}
    with pytest.raises(
        ValueError, match="unknown aggregation rule 'mean'; choose one of fedavg, median"
    ):
        rule_class("mean")


def test_a_registered_rule_reaches_the_protection_check(monkeypatch):
    """Sum-only modes ask the rule, not a list of names: a new rule that a sum serves passes."""

    class SumRule(AggregationRule):
        name = "test-sum"
        needs_individual_updates = False

        def aggregate(self, updates, weights=None):
            stack = np.asarray(updates, dtype=np.float64)
            return Outcome(stack.sum(axis=0).astype(np.float32), list(range(len(stack))))

    monkeypatch.setitem(RULES, "test-sum", SumRule)
    check_protection("secagg", "test-sum")
    with pytest.raises(ValueError, match="protection ckks reveals only the sum"):
        check_protection("ckks", "median")
    check_protection("ckks", "multi-krum")  # selection from encrypted inner products
    with pytest.raises(ValueError, match="registered twice"):
        register(SumRule)


def _reference_krum_order(stack: np.ndarray, f: int) -> list[int]:
    n = len(stack)
    d = ((stack[:, None, :].astype(np.float64) - stack[None, :, :]) ** 2).sum(axis=2)
    scores = [np.sort(np.delete(d[i], i))[: n - f - 2].sum() for i in range(n)]
    return sorted(range(n), key=lambda i: (scores[i], i))


def _sealed_round(rule: str, f: int, deltas: dict[str, np.ndarray], norm_bound: bool = False):
    # the real settings: bucketing off, the default
    settings = PeerSettings(rule=rule, f=f, norm_bound=norm_bound)
    peer = SimpleNamespace(
        settings=settings, global_params=np.zeros(next(iter(deltas.values())).size, np.float32)
    )
    mode = SealedMode(peer)  # type: ignore[arg-type]  # the peer is this unit's neighbour
    opened = {
        a: ModelUpdate(round=1, sender=a, samples=10 + i, epsilon=1.0, delta=d)
        for i, (a, d) in enumerate(deltas.items())
    }
    return trio.run(mode.aggregate, 1, opened)


@pytest.mark.parametrize("rule", ["krum", "multi-krum", "bulyan"])
def test_sealed_round_computes_the_distance_matrix_once(rule, monkeypatch):
    calls = []
    real = krum_module.pairwise_sq_distances

    def counted(stack):
        calls.append(stack.shape)
        return real(stack)

    monkeypatch.setattr(krum_module, "pairwise_sq_distances", counted)
    monkeypatch.setattr(bulyan_module, "pairwise_sq_distances", counted)
    rng = np.random.default_rng(7)
    n, f = 7, 1
    rows = rng.normal(size=(n, 40)).astype(np.float32)
    rows[2] += 25.0  # one far outlier: no near-ties in the scores
    addresses = [f"0x{i + 1:040x}" for i in range(n)]  # ascending: row i is address i
    result = _sealed_round(rule, f, dict(zip(addresses, rows, strict=False)))
    assert calls == [(n, 40)]  # once per round, for the aggregate and the accepted set together
    order = _reference_krum_order(rows, f)
    if rule == "krum":
        expected = [order[0]]
        np.testing.assert_array_equal(result.params, rows[order[0]])
    elif rule == "multi-krum":
        expected = sorted(order[: n - f])
        np.testing.assert_allclose(
            result.params, rows[expected].astype(np.float64).mean(axis=0), rtol=1e-6
        )
    else:  # Bulyan keeps n - 2f; the outlier is never among them
        expected = None
        assert len(result.accepted) == n - 2 * f and addresses[2] not in result.accepted
    if expected is not None:
        assert result.accepted == [addresses[i] for i in expected]


@pytest.mark.parametrize("name", [n for n in RULES if n != "fedavg"])
def test_wrappers_compose_with_every_rule(name):
    rng = np.random.default_rng(11)
    f, size, seed = 1, 2, 5
    n = max(9, (RULES[name].min_updates(f) - 1) * size + 1)
    rows = rng.normal(size=(n, 12)) * rng.uniform(0.5, 4.0, size=(n, 1))
    inner = rule_class(name)(f)

    bound = float(np.median(np.linalg.norm(rows, axis=1)))  # Sun et al. 2019, median-norm bound
    clipped = rows * np.minimum(1.0, bound / np.linalg.norm(rows, axis=1))[:, None]
    out = Clipped(inner).aggregate(rows)
    ref = inner.aggregate(clipped)
    np.testing.assert_allclose(out.params, ref.params, rtol=1e-6, atol=1e-7)
    assert out.accepted == ref.accepted

    perm = np.random.default_rng(seed).permutation(n)  # Karimireddy et al. 2022, Algorithm 1
    buckets = [perm[i : i + size] for i in range(0, n, size)]
    means = np.array([rows[b].mean(axis=0) for b in buckets])
    out = Bucketed(inner, size, seed).aggregate(rows)
    ref = inner.aggregate(means)
    np.testing.assert_allclose(out.params, ref.params, rtol=1e-6, atol=1e-7)
    assert out.accepted == sorted(int(i) for j in ref.accepted for i in buckets[j])
    assert make_rule(name, f, bucket=size).fewest() == (RULES[name].min_updates(f) - 1) * size + 1


def test_bucketing_refuses_fedavg():
    with pytest.raises(ValueError, match="FedAvg of bucket means is FedAvg"):
        make_rule("fedavg", bucket=2)


def test_sealed_norm_bound_scales_each_update_to_the_median_norm_first():
    """``[aggregation] norm_bound`` under sealed (Sun et al. 2019): every update scaled by
    ``min(1, M / |u|)``, M the median norm, before the rule (here the coordinate median);
    the reference is written out here with numpy."""
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(5, 30)) * np.array([[1.0], [2.0], [0.5], [40.0], [3.0]])
    addresses = [f"0x{i + 1:040x}" for i in range(5)]
    deltas = dict(zip(addresses, rows.astype(np.float32), strict=True))
    norms = np.linalg.norm(rows.astype(np.float32).astype(np.float64), axis=1)
    scaled = rows.astype(np.float32) * np.minimum(1.0, np.median(norms) / norms)[:, None]
    got = _sealed_round("median", 1, deltas, norm_bound=True).params
    np.testing.assert_allclose(got, np.median(scaled, axis=0), rtol=1e-5, atol=1e-6)
    plain = _sealed_round("median", 1, deltas).params
    assert not np.allclose(plain, got)  # the bound changed the aggregate
