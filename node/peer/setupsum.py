"""The consortium's standardizer from a secure sum: only the total of all sites is revealed.

Each site ``u`` clips its rows to the public feature bounds and shares, instead of its sums,

    y_u = encode([n_u, sum_u, sumsq_u]) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)   (mod 2^64)

with ``s_uv`` derived from X25519 between the two sites' registered sealing keys, bound by HKDF
to the deployment and the purpose (the pairwise masks of Bonawitz et al., CCS 2017, §4, with the
arithmetic of :mod:`node.crypto.secagg.masking`). The masks cancel in the sum over all members, which every
member computes identically (ring arithmetic is exact), so each learns the consortium's total
count, per-feature sums and sums of squares (the pooled mean and standard deviation) and nothing
else: a single ``y_u`` is uniformly random to anyone but ``u``. There is no dropout recovery and
so no self-mask: a key is never reconstructed, and a member that sends nothing leaves the total
masked; the set-up then falls back to the public bounds' scaling (:func:`node.data.scaling.from_bounds`),
so a silent member cannot stop the consortium.

Each site enters its published count Ñ (:mod:`node.learning.privacy`), not N, with its sums scaled by
Ñ/N: the pooled statistics weigh each site's exact means and second moments by Ñ, and no total,
whoever colludes, carries a site's exact N.

The sum is not a DP release. Against the other members together it hides nothing they could not
subtract themselves: all n−1 others learn a site's exact per-feature means and second moments
(its Ñ is public anyway), outside the ε budget; against any smaller coalition it hides each
site's statistics behind the others'.
A member can add anything to its masked input and is not identifiable; :func:`check_total`
bounds what that can do: the total count must be at least one row per member, every per-feature
mean must lie within the public bounds and every standard deviation between
``MIN_STD_FRACTION`` of the range and half of it (the most data within the bounds can have), or
the scaling falls back to the public bounds'.
"""

from __future__ import annotations

import numpy as np

from node.crypto.secagg.masking import RingParams, decode_fixed, encode_fixed, pair_seed, prg
from node.data.samples import LabelledData, Standardizer
from node.data.scaling import MAX_COUNT, FeatureBounds
from node.errors import MedmeshError

__all__ = [
    "PARAMS",
    "SetupSumError",
    "site_vector",
    "mask",
    "unmask",
    "check_total",
    "decode_masked",
]


class SetupSumError(MedmeshError, ValueError):
    """A masked set-up sum, or the total it unmasks to, is malformed or implausible."""


#: 64-bit ring, 20 fractional bits: values up to ~8.8e12 / members, resolution 9.5e-7.
PARAMS = RingParams(ring_bits=64, frac_bits=20)
#: A pooled standard deviation below this share of the feature's public range is implausible.
MIN_STD_FRACTION = 0.01


def site_vector(data: LabelledData, bounds: FeatureBounds, count: int | None = None) -> np.ndarray:
    """``[n, per-feature sums, per-feature sums of squares]`` of the rows clipped to the public
    bounds, over the published row count ``count`` (Ñ, :mod:`node.learning.privacy`): the sums are
    scaled by ``count / N``, so the site's means and second moments are exact and its weight in
    the pooled statistics is Ñ. ``None``: the exact count N."""
    x = np.clip(data.x.reshape(len(data), -1).astype(np.float64), bounds.low, bounds.high)
    n = len(data) if count is None else count
    scale = n / len(data)
    return np.concatenate([[float(n)], x.sum(axis=0) * scale, (x * x).sum(axis=0) * scale])


def mask(
    vector: np.ndarray, me: str, my_key, members: dict[str, bytes], context: bytes
) -> np.ndarray:
    """``y_u``: ``members`` maps every member's address (``me`` too) to its sealing public key."""
    y = encode_fixed(vector, PARAMS, len(members))
    for other in sorted(members, key=str.lower):
        if other.lower() == me.lower():
            continue
        pad = prg(
            pair_seed(my_key, members[other], me, other, b"setup-sum|" + context), y.size, PARAMS
        )
        y = y + pad if other.lower() > me.lower() else y - pad
    return y


def unmask(masked: list[np.ndarray]) -> np.ndarray:
    """The total of the members' vectors, once every member's ``y_u`` is in ``masked``."""
    total = np.zeros_like(masked[0])
    for y in masked:
        total = total + y
    return decode_fixed(total, PARAMS)


def decode_masked(values: object, size: int) -> np.ndarray:
    """A received ``y_u`` (a JSON list of ``size`` integers in [0, 2^64)); ValueError otherwise."""
    if not isinstance(values, list) or len(values) != size:
        raise SetupSumError(f"a masked sum of {size} ring elements is expected")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**64 for v in values):
        raise SetupSumError("masked sum values must be integers in [0, 2^64)")
    return np.array(values, dtype=np.uint64)


def check_total(total: np.ndarray, members: int, bounds: FeatureBounds) -> Standardizer:
    """The pooled z-scorer, or ValueError (one line) if the total is implausible."""
    d = bounds.low.size
    if total.shape != (2 * d + 1,):
        raise SetupSumError(f"a total of {total.size} values, expected {2 * d + 1}")
    count = total[0]
    if not members <= count <= MAX_COUNT or abs(count - round(count)) > 1e-3:
        raise SetupSumError(
            f"total row count {count:.4g} is not an integer in {members}..{MAX_COUNT}"
        )
    n = round(count)
    mean, second = total[1 : d + 1] / n, total[d + 1 :] / n
    width = bounds.high - bounds.low
    slack = 1e-6 * width
    outside = (mean < bounds.low - slack) | (mean > bounds.high + slack)
    if outside.any():
        j = int(np.argmax(outside))
        raise SetupSumError(
            f"feature {j}'s consortium mean {mean[j]:.4g} is outside its public bounds "
            f"[{bounds.low[j]:g}, {bounds.high[j]:g}]"
        )
    std = np.sqrt(np.maximum(second - mean * mean, 0.0))
    implausible = (std < MIN_STD_FRACTION * width) | (std > width / 2 + slack)
    if implausible.any():
        j = int(np.argmax(implausible))
        raise SetupSumError(
            f"feature {j}'s consortium std {std[j]:.4g} is outside {MIN_STD_FRACTION:g}..0.5 of its "
            f"public range {width[j]:g}"
        )
    return Standardizer(mean, std)
