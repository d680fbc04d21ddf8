"""Self-reported sample counts (issue 16, section 1): a member's claim cannot buy it weight.

The review's attack: 1 of 10 peers sends the honest mean sign-flipped x4 (Li et al. 2019,
RSA's sigma = -4) and claims ever more samples. The robust rules must not move at all
(bit-identical output whatever the claim), and FedAvg's weight for the claimer must stay under
the bound :func:`node.consensus.rules.bounded_counts` proves: f / (floor(n/2) + 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from node.adversary.attacks import sign_flip
from node.consensus.rules import RULES, aggregate, aggregate_by_peer, bounded_counts
from node.consensus.rules.fedavg import fedavg
from node.data.samples import FeatureStats, Standardizer, breast_cancer_split
from node.learning.evaluation import evaluate
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local

CLAIMS = (30, 300, 400, 450, 10**6, 2**63)  # the review's claims, and the largest a uint64 holds


def _review_stack(seed: int = 0) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    honest = rng.normal(0.5, 1.0, size=(9, 31)).astype(np.float32)
    attacked = np.vstack([sign_flip(honest, 1, scale=4.0), honest])
    return attacked, [45.0] + rng.integers(20, 80, size=9).astype(float).tolist()


@pytest.mark.parametrize("rule", [r for r in RULES if r != "fedavg"])
def test_a_claimed_count_never_moves_a_robust_rule(rule):
    stack, honest_claims = _review_stack()
    outputs = {
        aggregate(rule, stack, [float(c)] + honest_claims[1:], f=1).tobytes() for c in CLAIMS
    }
    assert len(outputs) == 1
    assert outputs == {aggregate(rule, stack, None, f=1).tobytes()}  # each member counted once


def test_geometric_median_counts_each_member_once():
    """Against an independent reference: the unweighted geometric median by Nelder-Mead."""
    stack, claims = _review_stack(1)
    stack = stack[:, :4].astype(np.float64)
    claims[0] = 450.0
    objective = lambda z: float(np.sqrt(((stack - z) ** 2).sum(axis=1)).sum())  # noqa: E731
    ref = minimize(
        objective,
        np.median(stack, axis=0),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    ).x
    np.testing.assert_allclose(aggregate("geomed", stack, claims), ref, atol=1e-4)


def test_bounded_counts_caps_at_the_lower_median_claim():
    assert bounded_counts([30, 120, 60, 40]).tolist() == [
        30,
        40,
        40,
        40,
    ]  # sorted: 30 40 60 120 -> 40
    assert bounded_counts([5, 3000, 7]).tolist() == [5, 7, 7]
    assert bounded_counts([50, 10, 90], ceilings=[20, 100, 100]).tolist() == [
        20,
        10,
        20,
    ]  # ceilings first
    with pytest.raises(ValueError, match="one finite non-negative count"):
        bounded_counts([1.0, float("nan")])
    with pytest.raises(ValueError, match="ceilings"):
        bounded_counts([1.0, 2.0], ceilings=[1.0])


@pytest.mark.parametrize("n,f", [(10, 1), (10, 3), (4, 1), (7, 3)])
def test_fedavg_influence_is_bounded_whatever_the_liars_claim(n, f):
    """Honest updates are 0, the liars' are 1, so FedAvg's output is the liars' weight share."""
    rng = np.random.default_rng(n * 10 + f)
    honest_claims = rng.integers(10, 200, size=n - f).astype(float).tolist()
    stack = np.vstack([np.ones((f, 1)), np.zeros((n - f, 1))])
    bound = f / (n // 2 + 1)
    for claim in CLAIMS:
        claims = [float(claim)] * f + honest_claims
        share = float(aggregate("fedavg", stack, claims)[0])
        capped = np.minimum(claims, sorted(claims)[(n - 1) // 2])  # the lower median, by hand
        assert share == pytest.approx(np.average(stack[:, 0], weights=capped), rel=1e-6)
        assert share <= bound + 1e-7, (claim, share, bound)


def test_fedavg_with_honest_claims_is_plain_fedavg_below_the_median():
    ups = np.random.default_rng(2).normal(size=(5, 8))
    claims = [40.0, 40.0, 40.0, 10.0, 20.0]  # nobody above the median: nothing capped
    np.testing.assert_array_equal(aggregate("fedavg", ups, claims), fedavg(ups, claims))


def test_aggregate_by_peer_applies_ceilings():
    ups = {"0xa": np.array([1.0]), "0xb": np.array([0.0]), "0xc": np.array([0.0])}
    claims = {"0xa": 100.0, "0xb": 100.0, "0xc": 100.0}
    out = aggregate_by_peer(
        "fedavg", ups, claims, ceilings={"0xa": 50.0, "0xb": 100.0, "0xc": 100.0}
    )
    assert float(out[0]) == pytest.approx(50 / 250)


def _campaign(rule: str, claim: float | None, rounds: int = 5) -> float:
    """bench_robust's tabular harness in small: 10 hospitals, logreg, full-batch steps at lr 2.0;
    peer 0 sends -4 x the honest mean each round and claims ``claim`` samples (None: no attack)."""
    split = breast_cancer_split(10, seed=0)
    stats = [FeatureStats.of(d) for d in split.hospitals.values()]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    sites, test = [z.apply(d) for d in split.hospitals.values()], z.apply(split.test)
    dp = DPConfig(enabled=False, rounds=rounds, local_epochs=1, steps_per_epoch=1)
    model = build_model("logreg", input_shape=sites[0].input_shape)
    params = flat_parameters(model)
    for r in range(rounds):
        first = 0 if claim is None else 1
        deltas = np.stack(
            [
                train_local(
                    model,
                    params,
                    sites[i],
                    PrivacyLedger(dp, warn_if_off=False),
                    TrainConfig(2.0, seed=r * 1000 + i, device="cpu"),
                ).delta
                for i in range(first, 10)
            ]
        )
        claims = [float(len(s)) for s in sites]
        if claim is not None:
            deltas = np.vstack([sign_flip(deltas, 1, scale=4.0), deltas])
            claims[0] = claim
        params = (params + aggregate(rule, deltas, claims, f=1)).astype(np.float32)
    load_flat_parameters(model, params)
    return evaluate(model, test).accuracy


def test_the_reviews_geomed_takeover_no_longer_works():
    """Review: geomed fell from 0.938 to 0.106 as the liar's claim grew to 450. Now the claim
    buys nothing: the accuracy is the same at every claim, and near the clean run."""
    clean = _campaign("geomed", None)
    attacked = {c: _campaign("geomed", float(c)) for c in (30, 450, 10**6)}
    assert len(set(attacked.values())) == 1, attacked
    assert attacked[450] >= clean - 0.02, (clean, attacked)
