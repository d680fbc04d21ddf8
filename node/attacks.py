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
- :func:`free_rider` — zero updates, or a stale update replayed (Lin et al., 2019).

:data:`PAPER_STRENGTHS` holds those papers' strengths; the function defaults are milder.

Data attacks change the attacker's own training data instead:

- :func:`flip_labels` — label flipping (Biggio et al., 2012; Fang et al., 2020 in FL);
- :func:`add_backdoor` — a trigger pattern stamped on some rows, relabelled to a target class
  (Bagdasaryan et al., 2020; Gu et al., 2017 "BadNets").
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.stats import norm

from node.data import LabelledData, TabularData

__all__ = ["sign_flip", "gaussian_noise", "scaling", "little_is_enough", "lie_z_max",
           "inner_product_manipulation", "free_rider", "flip_labels", "add_backdoor", "MODEL_ATTACKS",
           "PAPER_STRENGTHS"]


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


def little_is_enough(honest: np.ndarray, f: int, *, n: int | None = None, z: float | None = None) -> np.ndarray:
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


MODEL_ATTACKS = {
    "sign-flip": sign_flip,
    "gaussian": gaussian_noise,
    "scaling": scaling,
    "lie": little_is_enough,
    "ipm": inner_product_manipulation,
    "free-rider": free_rider,
}

# Strengths used in the papers the attacks come from (keyword arguments of MODEL_ATTACKS);
# scaling's gamma = n is the number of participants, so callers pass factor=n themselves.
PAPER_STRENGTHS: dict[str, dict[str, float]] = {
    "sign-flip": {"scale": 4.0},  # Li et al. 2019 (RSA), sigma = -4
    "gaussian": {"sigma": 200.0},  # Blanchard et al. 2017, Gaussian Byzantine workers
    "ipm": {"epsilon": 100.0},  # Xie et al. 2020, a large epsilon (> (n - f) / f for any f >= 1, n <= 101)
}


def flip_labels(data: LabelledData) -> LabelledData:
    """Every binary label inverted."""
    return replace(data, y=(1.0 - data.y).astype(np.float32))


def add_backdoor(data: TabularData, *, fraction: float = 0.3, target: float = 0.0,
                 trigger_features: tuple[int, ...] = (0, 1, 2), trigger_value: float = 6.0,
                 seed: int = 0) -> TabularData:
    """Stamp a trigger (``trigger_value`` on ``trigger_features``) on a ``fraction`` of the
    rows, relabelled ``target``; the rows are added to the clean data, not replacing it."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data), size=max(1, int(fraction * len(data))), replace=False)
    x = data.x[idx].copy()
    x[:, list(trigger_features)] = trigger_value
    y = np.full(len(idx), target, dtype=np.float32)
    return TabularData(np.concatenate([data.x, x]).astype(np.float32), np.concatenate([data.y, y]))
