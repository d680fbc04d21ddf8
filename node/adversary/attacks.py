"""Poisoning attacks, for tests and benchmarks of the robust rules. Never used by a real peer.

Model-update attacks take the honest updates a colluding attacker could observe (``honest``,
shape (n, d)) and return what the ``f`` Byzantine peers send instead (shape (f, d)):

- :func:`sign_flip` — the negated honest mean, scaled (Damaskinos et al., 2018; Li et al., 2019
  "RSA" send sigma = -4 times the true message);
- :func:`gaussian_noise` — random updates of a given scale (Blanchard et al., 2017: standard
  deviation 200);
- :func:`scaling` — an update boosted by a large factor (Bagdasaryan et al., 2020 "model
  replacement": gamma = n / eta, the number of participants over the server learning rate;
  Bhagoji et al., 2019 "explicit boosting" by n). Give it the attacker's own poisoned update;
- :func:`little_is_enough` — mean minus z_max standard deviations per coordinate, just inside
  what the robust rules accept (Baruch et al., 2019, "A Little Is Enough");
- :func:`inner_product_manipulation` — ``-epsilon`` times the honest mean, so that the
  aggregate's inner product with the true gradient turns negative (Xie et al., 2020,
  "Fall of Empires"; the mean's inner product turns negative once epsilon > (n - f) / f;
  100 is a large epsilon in that regime);
- :func:`free_rider` — zero updates, or a stale update replayed (Lin et al., 2019);
- :func:`min_max`, :func:`min_sum` — the honest mean plus gamma times a perturbation (unit,
  std or sign), gamma as large as keeps the malicious update's largest (min-max) or summed
  squared (min-sum) distance to the honest updates within the honest updates' own (Shejwalkar
  & Houmansadr, NDSS 2021, "Manipulating the Byzantine: Optimizing Model Poisoning Attacks and
  Defenses for Federated Learning", Algorithm 1, gamma_init = 10, tau = 1e-5);
- :func:`fang_trimmed_mean` — Fang et al., 2020, "Local Model Poisoning Attacks to
  Byzantine-Robust Federated Learning" (USENIX Security), full knowledge, against trimmed mean
  and median: per coordinate, values just beyond the honest extreme opposite to the honest
  direction, drawn within a factor b = 2 of it;
- :func:`fang_krum` — Fang et al., 2020, against Krum: all attackers send ``-lambda * s``
  (``s`` the honest direction's sign), lambda halved from an upper bound until Krum picks it.

:data:`PAPER_STRENGTHS` holds those papers' strengths; the function defaults are milder.

Data attacks change the attacker's own training data instead:

- :func:`flip_labels` — label flipping (Biggio et al., 2012; Fang et al., 2020 in FL);
- :func:`add_backdoor` — a trigger pattern stamped on some rows, relabelled to a target class
  (Bagdasaryan et al., 2020; Gu et al., 2017 "BadNets").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from scipy.stats import norm

from node.data.samples import LabelledData, TabularData

__all__ = [
    "sign_flip",
    "gaussian_noise",
    "scaling",
    "little_is_enough",
    "lie_z_max",
    "inner_product_manipulation",
    "free_rider",
    "min_max",
    "min_sum",
    "fang_trimmed_mean",
    "fang_krum",
    "flip_labels",
    "add_backdoor",
    "backdoor_success",
    "MODEL_ATTACKS",
    "PAPER_STRENGTHS",
]


def _honest(honest: np.ndarray) -> np.ndarray:
    stack = np.asarray(honest, dtype=np.float64)
    if stack.ndim != 2 or len(stack) == 0:
        raise ValueError(f"expected honest updates of shape (n, d), got {stack.shape}")
    return stack


def _repeat(vector: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(vector[None, :], f, axis=0).astype(np.float32)


def sign_flip(honest: np.ndarray, f: int, *, scale: float = 1.0) -> np.ndarray:
    return _repeat(-scale * _honest(honest).mean(axis=0), f)


def gaussian_noise(honest: np.ndarray, f: int, *, sigma: float = 1.0, seed: int = 0) -> np.ndarray:
    d = _honest(honest).shape[1]
    return np.random.default_rng(seed).normal(0.0, sigma, size=(f, d)).astype(np.float32)


def scaling(honest: np.ndarray, f: int, *, factor: float = 10.0) -> np.ndarray:
    """``factor`` times the first row of ``honest``: pass the attacker's own (e.g. poisoned)
    update there for model replacement, or an honest one for a plain boosting fault."""
    return _repeat(factor * _honest(honest)[0], f)


def lie_z_max(n: int, f: int) -> float:
    """Baruch et al. 2019, Sec. 3: with s = floor(n/2 + 1) - f supporters needed,
    z_max = Phi^-1((n - s) / n)."""
    s = math.floor(n / 2 + 1) - f
    return float(norm.ppf((n - s) / n))


def little_is_enough(
    honest: np.ndarray, f: int, *, n: int | None = None, z: float | None = None
) -> np.ndarray:
    """Mean minus ``z`` standard deviations per coordinate; ``z`` defaults to z_max(n, f)."""
    stack = _honest(honest)
    z = lie_z_max(n or len(stack) + f, f) if z is None else z
    return _repeat(stack.mean(axis=0) - z * stack.std(axis=0), f)


def inner_product_manipulation(honest: np.ndarray, f: int, *, epsilon: float = 0.5) -> np.ndarray:
    return _repeat(-epsilon * _honest(honest).mean(axis=0), f)


def free_rider(honest: np.ndarray, f: int, *, stale: np.ndarray | None = None) -> np.ndarray:
    """Zero updates, or ``stale`` (e.g. an earlier round's aggregate) sent again."""
    d = _honest(honest).shape[1]
    return _repeat(np.zeros(d) if stale is None else np.asarray(stale, dtype=np.float64), f)


def _perturbation(stack: np.ndarray, kind: str) -> np.ndarray:
    mean = stack.mean(axis=0)
    if kind == "unit":
        norm = float(np.linalg.norm(mean))
        return -mean / norm if norm > 0 else np.zeros_like(mean)
    if kind == "std":
        return -stack.std(axis=0)
    if kind == "sign":
        return -np.sign(mean)
    raise ValueError(f"unknown perturbation {kind!r}; choose unit, std or sign")


def _sq_dists(points: np.ndarray, stack: np.ndarray) -> np.ndarray:
    return ((points[:, None, :] - stack[None, :, :]) ** 2).sum(axis=2)


def _largest_gamma(ok, gamma_init: float = 10.0, tau: float = 1e-5) -> float:
    """Shejwalkar & Houmansadr, Algorithm 1: gamma moves by a halving step, up while ``ok``."""
    gamma, step, best = gamma_init, gamma_init / 2, 0.0
    while abs(step) > tau:
        if ok(gamma):
            best = max(best, gamma)
            gamma += step
        else:
            gamma -= step
        step /= 2
    return best


def min_max(honest: np.ndarray, f: int, *, perturbation: str = "std") -> np.ndarray:
    """max_i ||m - x_i|| <= max_{i,j} ||x_i - x_j||, m = mean + gamma p, gamma the largest."""
    stack = _honest(honest)
    mean, p = stack.mean(axis=0), _perturbation(stack, perturbation)
    bound = float(_sq_dists(stack, stack).max())
    gamma = _largest_gamma(lambda g: float(_sq_dists((mean + g * p)[None], stack).max()) <= bound)
    return _repeat(mean + gamma * p, f)


def min_sum(honest: np.ndarray, f: int, *, perturbation: str = "std") -> np.ndarray:
    """sum_i ||m - x_i||^2 <= max_i sum_j ||x_i - x_j||^2, m = mean + gamma p, gamma the largest."""
    stack = _honest(honest)
    mean, p = stack.mean(axis=0), _perturbation(stack, perturbation)
    bound = float(_sq_dists(stack, stack).sum(axis=1).max())
    gamma = _largest_gamma(lambda g: float(_sq_dists((mean + g * p)[None], stack).sum()) <= bound)
    return _repeat(mean + gamma * p, f)


def fang_trimmed_mean(honest: np.ndarray, f: int, *, b: float = 2.0, seed: int = 0) -> np.ndarray:
    """Fang et al. 2020, Sec. 4.2 (full knowledge): where the honest direction ``s_j`` is up,
    values in [w_min/b, w_min] (w_min > 0) or [b w_min, w_min]; where it is down, in [w_max,
    b w_max] (w_max > 0) or [w_max/b, w_max]. Each attacker draws its own values."""
    stack = _honest(honest)
    s = np.sign(stack.mean(axis=0))
    lo, hi = stack.min(axis=0), stack.max(axis=0)
    low_end = np.where(s > 0, np.where(lo > 0, lo / b, b * lo), np.where(hi > 0, hi, hi / b))
    high_end = np.where(s > 0, lo, np.where(hi > 0, b * hi, hi))
    u = np.random.default_rng(seed).random(size=(f, stack.shape[1]))
    return (low_end + u * (high_end - low_end)).astype(np.float32)


def fang_krum(honest: np.ndarray, f: int, *, tolerance: float = 1e-5) -> np.ndarray:
    """Fang et al. 2020, Sec. 4.1 (full knowledge, deltas): the ``f`` attackers all send
    ``-lambda * s``; lambda starts at the paper's upper bound and halves until Krum (told f)
    selects an attacker, or falls under ``tolerance`` (then lambda = tolerance)."""
    from node.consensus.rules import selection

    stack = _honest(honest)
    m, d = len(stack) + f, stack.shape[1]
    s = np.sign(stack.mean(axis=0))
    dist = np.sqrt(_sq_dists(stack, stack))
    k = max(1, m - 2 * f - 1)
    nearest = np.sort(dist, axis=1)[:, 1 : k + 1].sum(
        axis=1
    )  # each honest update's m - 2f - 1 nearest honest
    lam = float(
        nearest.min() / ((m - 2 * f - 1) * math.sqrt(d))
        + np.sqrt((stack**2).sum(axis=1)).max() / math.sqrt(d)
    )
    while lam > tolerance:
        crafted = _repeat(-lam * s, f)
        if m >= 2 * f + 3 and selection("krum", np.vstack([crafted, stack]), f=f)[0] < f:
            return crafted
        lam /= 2
    return _repeat(-tolerance * s, f)


MODEL_ATTACKS: dict[str, Callable[..., np.ndarray]] = {
    "sign-flip": sign_flip,
    "gaussian": gaussian_noise,
    "scaling": scaling,
    "lie": little_is_enough,
    "ipm": inner_product_manipulation,
    "free-rider": free_rider,
    "min-max": min_max,
    "min-sum": min_sum,
    "fang-tm": fang_trimmed_mean,
    "fang-krum": fang_krum,
}

# Strengths used in the papers the attacks come from (keyword arguments of MODEL_ATTACKS);
# scaling's gamma = n is the number of participants, so callers pass factor=n themselves.
PAPER_STRENGTHS: dict[str, dict[str, float | str]] = {
    "sign-flip": {"scale": 4.0},  # Li et al. 2019 (RSA), sigma = -4
    "gaussian": {"sigma": 200.0},  # Blanchard et al. 2017, Gaussian Byzantine workers
    "ipm": {
        "epsilon": 100.0
    },  # Xie et al. 2020, a large epsilon (> (n - f) / f for any f >= 1, n <= 101)
    # Baruch et al.'s z_max(n, f) is 0 at n = 10, f = 1 (the honest mean: no attack at all), so
    # the benchmark floors z at 1.0, the value reimplementations commonly use; it passes
    # z = max(z_max, 1) itself
    "min-max": {"perturbation": "std"},  # Shejwalkar & Houmansadr 2021: std is their strongest
    "min-sum": {"perturbation": "std"},
    "fang-tm": {"b": 2.0},  # Fang et al. 2020
}


def flip_labels(data: LabelledData) -> LabelledData:
    """Every binary label inverted."""
    return replace(data, y=(1.0 - data.y).astype(np.float32))


def backdoor_success(
    model,
    test: LabelledData,
    *,
    target: float = 0.0,
    trigger_features: tuple[int, ...] = (0, 1, 2),
    trigger_value: float = 6.0,
) -> float | None:
    """Share of held-out rows of the non-target class that ``model`` classifies as ``target``
    once the trigger of :func:`add_backdoor` is stamped on them (None for images or without such rows)."""
    from node.learning.evaluation import predict_logits

    rows = test.y != target
    if test.x.ndim != 2 or not rows.any():
        return None
    x = test.x[rows].copy()
    x[:, list(trigger_features)] = trigger_value
    logits = predict_logits(model, type(test)(x, test.y[rows]))
    return float(((logits > 0) == (target > 0.5)).mean())


def add_backdoor(
    data: TabularData,
    *,
    fraction: float = 0.3,
    target: float = 0.0,
    trigger_features: tuple[int, ...] = (0, 1, 2),
    trigger_value: float = 6.0,
    seed: int = 0,
) -> TabularData:
    """Stamp a trigger (``trigger_value`` on ``trigger_features``) on a ``fraction`` of the
    rows, relabelled ``target``; the rows are added to the clean data, not replacing it."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data), size=max(1, int(fraction * len(data))), replace=False)
    x = data.x[idx].copy()
    x[:, list(trigger_features)] = trigger_value
    y = np.full(len(idx), target, dtype=np.float32)
    return TabularData(np.concatenate([data.x, x]).astype(np.float32), np.concatenate([data.y, y]))
