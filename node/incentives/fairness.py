"""How evenly credits are spread.

- :func:`gini` — the Gini coefficient as half the relative mean absolute difference (Gini,
  1912, "Variabilità e mutabilità"): 0 when everyone holds the same, (n - 1) / n when one
  holder has everything.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gini"]


def gini(values: np.ndarray | list[float]) -> float:
    """G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x)), for non-negative ``values`` (0 if all zero)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"gini needs a non-empty list of values, got shape {x.shape}")
    if (x < 0).any() or not np.isfinite(x).all():
        raise ValueError("gini needs finite, non-negative values")
    mean = x.mean()
    if mean == 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * mean))
