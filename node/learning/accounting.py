"""The privacy accountants and the arithmetic around them: which accountant composes a history,
the noise multiplier that meets a target, and the noisy row count a hospital releases.

:class:`~node.learning.privacy.PrivacyLedger` keeps a hospital's history and persists it; this
module only computes. The PRV accountant is Gopi et al. (2021); the Rényi-DP one Mironov (2017),
restricted to integer orders for subsampled steps (:class:`SoundRDPAccountant`); the calibration
bisects as Opacus' ``get_noise_multiplier`` does; the count release is the Gaussian mechanism at
sensitivity 1 (the relation it keeps: :mod:`node.learning.privacy`'s docstring).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from opacus.accountants import IAccountant, RDPAccountant, create_accountant
from opacus.accountants.analysis import rdp as rdp_analysis

from node.learning.securerng import SecureRandom
from node.service.config import ACCOUNTANTS

__all__ = [
    "Event",
    "SoundRDPAccountant",
    "make_accountant",
    "calibrate_noise",
    "cohort_ceiling",
    "noisy_count",
    "epsilon",
    "epsilon_of",
]

Event = tuple[float, float, int]  # (noise multiplier, sample rate, steps), as in Opacus' histories


class SoundRDPAccountant(RDPAccountant):
    """Opacus' RDP accountant, restricted to integer orders for subsampled steps.

    For the Poisson-subsampled Gaussian, Opacus' RDP at fractional orders can be lower than
    Google's dp-accounting (e.g. 11.742 against 11.772 for sigma 0.8, q 0.05, 300 steps,
    delta 1e-6; tests/unit/learning/test_privacy_accounting.py); at integer orders the two agree
    to 1e-12, and integer orders are where the bound of Mironov et al. (2019) is exact. So a history
    with any subsampled step is converted over the integer orders only (slightly looser, never
    under-counted); full-batch steps (sample rate 1, the plain Gaussian mechanism, exact at every
    order) keep Opacus' whole grid.
    """

    def get_privacy_spent(self, *, delta: float, alphas=None) -> tuple[float, float]:
        if not self.history:
            return 0, 0
        if alphas is None:
            alphas = self.DEFAULT_ALPHAS
            if any(q < 1 for _, q, _ in self.history):
                alphas = [a for a in alphas if float(a).is_integer()]
        rdp = sum(
            rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=n, orders=alphas)
            for sigma, q, n in self.history
        )
        eps, best = rdp_analysis.get_privacy_spent(orders=alphas, rdp=rdp, delta=delta)
        return float(eps), float(best)


def make_accountant(name: str) -> IAccountant:
    """A fresh accountant by config name: ``"rdp"`` (:class:`SoundRDPAccountant`) or ``"prv"``."""
    if name == "rdp":
        return SoundRDPAccountant()
    if name == "prv":
        return create_accountant("prv")
    raise ValueError(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {name!r}")


def calibrate_noise(
    accountant: str,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    *,
    tolerance: float = 0.005,
    fixed: Sequence[Event] = (),
) -> float:
    """The smallest noise multiplier (within ``tolerance`` in epsilon) whose ``steps`` steps at
    ``sample_rate``, composed with the ``fixed`` events (the row-count release), spend at most
    ``target_epsilon``, by the named accountant (bisection, as Opacus' ``get_noise_multiplier``,
    but with this module's accountants)."""

    def eps(sigma: float) -> float:
        acc = make_accountant(accountant)
        acc.history = [*fixed, (sigma, sample_rate, steps)]
        return epsilon(acc, delta)

    if fixed:
        alone = make_accountant(accountant)
        alone.history = list(fixed)
        if epsilon(alone, delta) >= target_epsilon:
            raise ValueError(
                f"the row-count release alone spends epsilon {epsilon(alone, delta):.3f} >= "
                f"the target {target_epsilon:g}; raise count_noise"
            )

    low, high = 0.0, 10.0
    eps_high = eps(high)
    while eps_high > target_epsilon:
        low, high = high, 2 * high
        if high > 1e6:
            raise ValueError(
                f"no noise multiplier reaches epsilon {target_epsilon} at delta {delta}"
            )
        eps_high = eps(high)
    while target_epsilon - eps_high > tolerance:
        mid = (low + high) / 2
        e = eps(mid)
        if e < target_epsilon:
            high, eps_high = mid, e
        else:
            low = mid
    return float(high)


def cohort_ceiling(rows: int) -> int:
    """A cohort to declare at admission when none is given: ``rows`` rounded up past the next
    step of 100 (or of the second significant digit, for cohorts above 10,000), so the chain
    carries a public ceiling, not N. It still reveals N's bracket: a consortium that can, declares
    a bound chosen without looking at N (a registry's capacity, the planned enrolment)."""
    step = max(100, 10 ** (len(str(max(rows, 1))) - 2))
    return step * (max(rows, 0) // step + 1)


def noisy_count(
    rows: int,
    noise: float,
    ceiling: int | None,
    rng: SecureRandom | None = None,
    *,
    z: float | None = None,
) -> int:
    """``clamp(round(rows + noise · Z), 1, ceiling)`` with Z a standard normal from the secure RNG
    (or the given ``z``: a caller with ``secure_mode`` off draws it as its DP noise is drawn)."""
    if z is None:
        z = float((rng or SecureRandom()).standard_normal(1)[0])
    count = max(round(rows + noise * z), 1)
    return int(min(count, ceiling) if ceiling else count)


def epsilon(accountant: IAccountant, delta: float) -> float:
    with np.errstate(
        divide="ignore", invalid="ignore"
    ):  # PRV at sample rate 1 takes log(0) harmlessly
        return float(accountant.get_epsilon(delta=delta))


@functools.lru_cache(maxsize=256)
def epsilon_of(
    accountant: str, history: tuple[tuple[float, float, int], ...], delta: float
) -> float:
    """Epsilon of ``history`` under the named accountant, computed once per history: a PRV
    epsilon costs tens of milliseconds, and a peer asks for the same one several times a round
    (saving its ledger, checking the next round, reporting the spend)."""
    probe = make_accountant(accountant)
    probe.history = list(history)
    return epsilon(probe, delta)
