"""Issue 15 §2: with a hospital's exact row count N public, the accountant's add/remove-one
relation does not hold. Each hospital now releases Ñ = N + Gaussian noise once per campaign,
charged to its privacy ledger, and publishes and weighs Ñ only.

References are independent of the code: Google's dp-accounting (RDP and PLD) composing the
count's Gaussian with the DP-SGD steps, and the exact privacy curve of the Gaussian mechanism
(Balle & Wang 2018, Theorem 8) where every event is a full-batch Gaussian.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import optimize, stats

from node.data.samples import breast_cancer_split
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import COUNT_NOISE, DPConfig, PrivacyLedger, cohort_ceiling, noisy_count
from node.learning.securerng import SecureRandom
from node.learning.training import TrainConfig, train_local
from node.service.config import PrivacySection

DEMO = dict(steps_per_epoch=1, local_epochs=1, rounds=5)  # the demo's schedule: full-batch steps
SUBSAMPLED = dict(steps_per_epoch=10, local_epochs=3, rounds=5)


def campaign(
    accountant: str, schedule: dict, count_noise: float | None = COUNT_NOISE
) -> PrivacyLedger:
    """A ledger after its count release and every round of its campaign (history stepped as
    Opacus' optimizer would, one round at a time, each checked first)."""
    ledger = PrivacyLedger(
        DPConfig(
            target_epsilon=1.0,
            delta=1e-5,
            accountant=accountant,
            count_noise=count_noise,
            **schedule,
        )
    )
    ledger.release_count(155, ceiling=200)
    c = ledger.config
    for _ in range(c.rounds):
        ledger.check_round()
        ledger.accountant.history = ledger.history + [
            (c.noise_multiplier, c.sample_rate, c.steps_per_round)
        ]
    return ledger


def google_epsilon(ledger: PrivacyLedger, kind: str) -> float:
    c = ledger.config
    steps = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(c.sample_rate, dp_event.GaussianDpEvent(c.noise_multiplier)),
        c.rounds * c.steps_per_round,
    )
    event = dp_event.ComposedDpEvent([dp_event.GaussianDpEvent(c.count_noise), steps])
    if kind == "rdp":
        google = rdp_privacy_accountant.RdpAccountant(
            orders=[a for a in ledger.accountant.DEFAULT_ALPHAS if float(a).is_integer()]
        )
    else:
        google = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    google.compose(event)
    return google.get_epsilon(c.delta)


def exact_gaussian_epsilon(sigmas: list[float], delta: float) -> float:
    """Composed full-batch Gaussians are one Gaussian of mu = sqrt(sum 1/sigma^2); its exact
    epsilon solves delta = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)."""
    mu = math.sqrt(sum(1 / s**2 for s in sigmas))

    def gap(eps: float) -> float:
        return (
            stats.norm.cdf(-eps / mu + mu / 2)
            - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)
            - delta
        )

    return optimize.brentq(gap, 0.0, 50.0)


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("schedule", [DEMO, SUBSAMPLED], ids=["full-batch", "subsampled"])
def test_composed_epsilon_is_never_below_google_and_stays_within_the_target(accountant, schedule):
    ledger = campaign(accountant, schedule)
    assert ledger.history[0] == (COUNT_NOISE, 1.0, 1)  # the release is one event of the history
    spent = ledger.spent()
    assert spent <= ledger.cap()  # the calibration left room for the count
    reference = google_epsilon(ledger, accountant if accountant == "rdp" else "pld")
    assert spent >= reference - 1e-9
    assert spent == pytest.approx(reference, rel=0.02)
    # and the campaign without the count release would have claimed less noise
    assert (
        ledger.config.noise_multiplier
        > campaign(accountant, schedule, count_noise=None).config.noise_multiplier
    )


def test_full_batch_campaign_matches_the_exact_gaussian_curve():
    ledger = campaign("prv", DEMO)
    c = ledger.config
    exact = exact_gaussian_epsilon([COUNT_NOISE] + [c.noise_multiplier] * c.rounds, c.delta)
    assert exact <= ledger.spent() <= exact + 0.015  # PRV reports its upper bound (eps_error 0.01)
    assert ledger.spent() <= ledger.cap()


def test_check_round_counts_the_release_before_it_happens():
    """A ledger that has not yet released its count may not plan a round as if it never will."""
    fresh = PrivacyLedger(
        DPConfig(target_epsilon=1.0, accountant="prv", count_noise=COUNT_NOISE, **DEMO)
    )
    before = fresh.projected(fresh.config.rounds)
    fresh.release_count(155)
    assert fresh.projected(fresh.config.rounds) == pytest.approx(before, rel=1e-9)


def test_a_restarted_ledger_reuses_its_count_and_charges_it_once(tmp_path, caplog):
    path = tmp_path / "privacy.json"
    config = DPConfig(target_epsilon=1.0, accountant="prv", count_noise=COUNT_NOISE, **DEMO)
    first = PrivacyLedger(config, path)
    released = first.release_count(155, ceiling=200)
    assert json.loads(path.read_text())["count"] == {
        "released": released,
        "rows": 155,
    }  # saved before use
    assert first.release_count(155, ceiling=200) == released and len(first.history) == 1
    spent = first.spent()
    restarted = PrivacyLedger(config, path)
    assert restarted.released_count == released and restarted.history == first.history
    with caplog.at_level(logging.WARNING, logger="medmesh.privacy"):
        assert restarted.release_count(156, ceiling=200) == released  # new data: no new draw either
    assert "keeping the released count" in caplog.text
    assert restarted.history == [(COUNT_NOISE, 1.0, 1)] and restarted.spent() == pytest.approx(
        spent, rel=1e-12
    )


def test_a_ledger_rebuilt_from_the_chain_takes_back_the_published_count(tmp_path):
    """A lost privacy.json, rebuilt with --restore-privacy-from-chain: the count comes back from
    the commits' ``samples``, charged once, and is never drawn again."""
    from node.service.privacyfloor import ChainSpend, check_floor, restore_from_chain

    config = DPConfig(target_epsilon=1.0, accountant="prv", count_noise=COUNT_NOISE, **DEMO)
    lost = campaign("prv", DEMO)
    c = lost.config
    lost.accountant.history = lost.history[:1] + [
        (c.noise_multiplier, c.sample_rate, 2 * c.steps_per_round)
    ]
    spend = ChainSpend(lost.spent(), round=2, commits=2, samples=lost.released_count)
    rebuilt = PrivacyLedger(config, tmp_path / "privacy.json")
    assert restore_from_chain(rebuilt, spend) == pytest.approx(spend.epsilon, rel=1e-9)
    check_floor(rebuilt, spend)
    again = PrivacyLedger(config, tmp_path / "privacy.json")  # what the node reads next
    assert again.release_count(155, ceiling=200) == lost.released_count
    assert again.history == rebuilt.history and again.history[0] == (COUNT_NOISE, 1.0, 1)


def test_the_count_noise_has_its_stated_scale_and_respects_the_bounds():
    rng = SecureRandom()
    draws = np.array([noisy_count(10_000, COUNT_NOISE, None, rng) for _ in range(4000)]) - 10_000
    # rounding a N(0, 10^2) adds variance 1/12: std sqrt(100 + 1/12)
    assert abs(draws.mean()) < 4 * COUNT_NOISE / math.sqrt(draws.size)
    assert draws.std() == pytest.approx(math.sqrt(COUNT_NOISE**2 + 1 / 12), rel=0.05)
    assert (
        stats.kstest(draws + rng.uniform(draws.size) - 0.5, "norm", args=(0, COUNT_NOISE)).pvalue
        > 1e-4
    )
    assert min(noisy_count(2, COUNT_NOISE, None, rng) for _ in range(200)) == 1
    assert max(noisy_count(155, COUNT_NOISE, 160, rng) for _ in range(200)) == 160


def test_dp_off_or_no_count_noise_releases_the_exact_count_and_charges_nothing():
    for config in (DPConfig(enabled=False), DPConfig(count_noise=None)):
        ledger = PrivacyLedger(config, warn_if_off=False)
        assert ledger.release_count(155) == 155 and ledger.history == [] and ledger.spent() == 0.0


def test_training_publishes_and_scales_by_the_released_count():
    data = breast_cancer_split(4, seed=0).hospitals["hospital-a"]
    model = build_model("logreg", input_shape=data.input_shape, seed=0)
    ledger = PrivacyLedger(
        DPConfig(target_epsilon=1.0, accountant="prv", count_noise=COUNT_NOISE, **DEMO)
    )
    released = ledger.release_count(len(data), ceiling=cohort_ceiling(len(data)))
    result = train_local(model, flat_parameters(model), data, ledger, TrainConfig(seed=0))
    assert result.samples == released
    assert (
        ledger.history[0] == (COUNT_NOISE, 1.0, 1) and len(ledger.history) == 2
    )  # not charged twice


def test_the_declared_cohort_is_a_ceiling_not_the_count():
    assert [cohort_ceiling(n) for n in (1, 80, 91, 99, 100, 155, 9_999, 12_345)] == [
        100,
        100,
        100,
        100,
        200,
        200,
        10_000,
        13_000,
    ]
    assert all(cohort_ceiling(n) > n for n in range(1, 3000))
    assert PrivacySection().count_noise == COUNT_NOISE  # the node's default is the module's


def test_a_count_noise_that_alone_exceeds_the_target_is_refused():
    with pytest.raises(ValueError, match="row-count release alone spends epsilon"):
        DPConfig(target_epsilon=0.2, count_noise=5.0, **DEMO).calibrated()
    with pytest.raises(ValueError, match="count_noise must be > 0"):
        DPConfig(count_noise=0.0)


def test_colluding_other_members_learn_the_released_count_not_n_from_the_masked_total():
    """The strongest coalition of the secure standardizer sum, all n-1 other members, subtracts
    its own inputs from the total: it learns the victim's Ñ (public anyway) and its exact
    feature means and second moments (outside ε, docs/threat-model.md), never its N."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from node.data.scaling import BREAST_CANCER_BOUNDS
    from node.peer import setupsum

    sites = breast_cancer_split(4, seed=0).hospitals
    keys = {f"0x{i:040x}": X25519PrivateKey.generate() for i in range(1, 5)}
    public = {a: k.public_key().public_bytes_raw() for a, k in keys.items()}
    ledgers = {
        a: PrivacyLedger(DPConfig(accountant="rdp", count_noise=COUNT_NOISE, **DEMO)) for a in keys
    }
    released = {
        a: ledgers[a].release_count(len(d), cohort_ceiling(len(d)))
        for a, d in zip(keys, sites.values(), strict=True)
    }
    vectors = {
        a: setupsum.site_vector(d, BREAST_CANCER_BOUNDS, released[a])
        for a, d in zip(keys, sites.values(), strict=True)
    }
    total = setupsum.unmask(
        [setupsum.mask(v, a, keys[a], public, b"ctx") for a, v in vectors.items()]
    )
    victim, data = next(iter(keys)), next(iter(sites.values()))
    learned = total - sum(vectors[a] for a in keys if a != victim)
    assert round(learned[0]) == released[victim]  # the count the coalition learns is Ñ
    x = np.clip(data.x.astype(np.float64), BREAST_CANCER_BOUNDS.low, BREAST_CANCER_BOUNDS.high)
    d = x.shape[1]
    np.testing.assert_allclose(
        learned[1 : d + 1] / learned[0], x.mean(axis=0), rtol=1e-6, atol=1e-5
    )
    np.testing.assert_allclose(
        learned[d + 1 :] / learned[0], (x * x).mean(axis=0), rtol=1e-6, atol=1e-5
    )


@pytest.mark.slow
def test_the_chain_carries_a_fixed_noised_count_never_n(tmp_path):
    """The attack of issue 15 §2: read each hospital's N off the chain (on main: every commit's
    ``samples`` and the admission cohort are exactly N). Now every commit carries the same Ñ for
    the whole campaign, the one its privacy ledger released and charged, the cohort is a
    ceiling above N, and the ε committed in round 1 already includes the count's release."""
    from ledger import collect, load_state
    from node.sim.demo import DemoConfig, run_demo

    state = tmp_path / "chain.json"
    report = run_demo(
        DemoConfig(rounds=2, chain_state=state, progress=False, state_dir=tmp_path / "peers")
    )
    audit = collect(*load_state(state))
    rows = {h["address"].lower(): h["samples"] for h in report["hospitals"].values()}
    ledgers = {
        h["address"].lower(): json.loads((tmp_path / "peers" / f"{n}.privacy.json").read_text())
        for n, h in report["hospitals"].items()
    }
    committed = {
        a: {
            c["samples"] for r in audit["rounds"] for c in r["commits"] if c["account"].lower() == a
        }
        for a in rows
    }
    assert all(len(counts) == 1 for counts in committed.values()), committed  # fixed across rounds
    for a, counts in committed.items():
        assert (
            counts == {ledgers[a]["count"]["released"]} and ledgers[a]["count"]["rows"] == rows[a]
        )
        assert ledgers[a]["history"][0] == [COUNT_NOISE, 1.0, 1]  # charged once, first
    assert any(counts != {rows[a]} for a, counts in committed.items())  # all four Ñ = N: p < 1e-5
    assert all(
        i["cohort"] == cohort_ceiling(rows[i["account"].lower()]) != rows[i["account"].lower()]
        for i in audit["identities"]
    )
    c = ledgers[next(iter(ledgers))]["config"]
    first = dp_event.ComposedDpEvent(
        [dp_event.GaussianDpEvent(COUNT_NOISE), dp_event.GaussianDpEvent(c["noise_multiplier"])]
    )
    google = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    google.compose(first)
    assert (
        min(cm["epsilon"] for cm in audit["rounds"][0]["commits"])
        >= google.get_epsilon(c["delta"]) - 1e-6
    )
