"""Robust selection from decrypted scalars: what every member computes, and an audit recomputes.

In ckks mode with a robust rule (:mod:`node.crypto.ckks.robust`) no member sees an update; the key
holder publishes the Gram matrix ``G[a, b] = <u_a, u_b>`` of the members' updates (inner
products, norms on the diagonal), signed. From it, every member runs the **same rule code as
in the clear** (:meth:`~node.consensus.rules.base.AggregationRule.select_from_distances`):

- squared distances ``G[a, a] + G[b, b] - 2 G[a, b]`` (:func:`distances_from_gram`);
- optional norm bounding (Sun et al., 2019, "Can You Really Backdoor Federated Learning?"):
  each update scaled by ``s_a = min(1, M / |u_a|)`` (:func:`~node.consensus.rules.wrappers.norm_scales`,
  ``M`` the median norm as in the clear :class:`~node.consensus.rules.wrappers.Clipped`); the
  scaled updates' Gram matrix is ``s_a s_b G[a, b]``, so the rule runs on it unchanged, and the
  aggregator multiplies each ciphertext by the public ``s_a``;
- the accepted set (Krum, Multi-Krum: Blanchard et al., 2017), canonical tie-break on the row
  order (ascending registry address).

The aggregate is the mean of the accepted (scaled) updates. :func:`check_sum` ties the decrypted
sum to the published scalars: ``|sum_{a in S} s_a u_a|^2`` must equal
``sum_{a, b in S} s_a s_b G[a, b]``. A Gram entry inside the accepted block that was tampered
with (by the aggregator, who evaluates it, or wrapped around the modulus by an oversized
update) breaks that equality unless the sum is forged to match; entries of rejected members do
not enter it (see docs/threat-model.md for what this does not catch).

:func:`check_own_row` is what each member checks of the key holder's scalars with what only it
knows, the update ``u_a`` it encrypted: its squared norm ``G[a, a] = |u_a|^2``, the sum of its row
over the accepted set ``sum_{c in S} s_c G[a, c] = <u_a, sum>`` (whether or not ``a`` is in ``S``),
and Cauchy-Schwarz ``|G[a, c]| <= |u_a| |u_c|`` against each accepted member's published norm; each
within the CKKS error bound (:class:`NoiseModel`, derived in :mod:`node.crypto.ckks.noise`).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np

from node.consensus.rules import make_rule
from node.consensus.rules.wrappers import norm_scales

__all__ = [
    "RobustSelection",
    "distances_from_gram",
    "select_from_gram",
    "audit_selection",
    "check_sum",
    "check_own_row",
    "OwnRow",
    "row_tolerance",
    "NoiseModel",
    "factor_integers",
    "FACTOR_BITS",
]

CHECK_REL_TOL = 1e-6  # CKKS: ~1e-9 relative per inner product
# CKKS absolute noise floors (N = 8192, primes (60, 40, 60), scale 2^40), measured at 1.3e-6 per decrypted
# inner product and 2e-8 per decrypted value of a sum, whatever the magnitude; bounded here with 10x / 50x
GRAM_ABS_ERR, SUM_ABS_ERR = 1e-5, 1e-6
FACTOR_BITS = (
    20  # a norm-bounding factor s is applied to a ciphertext as the integer round(s * 2^20)
)


class RobustSelection(NamedTuple):
    accepted: list[int]  # rows kept, ascending
    scales: (
        np.ndarray
    )  # float64 factor per row, as in the clear (1.0 without norm bounding; 0.0 out of range)
    out_of_range: tuple[
        int, ...
    ] = ()  # rows with a NaN (an inner product beyond the scalar bound): left out


def distances_from_gram(gram: np.ndarray) -> np.ndarray:
    """Squared distances ``|a|^2 + |b|^2 - 2 <a, b>`` (float64, zero diagonal, clamped at 0:
    CKKS noise can make a near-zero distance slightly negative)."""
    g = _square(gram)
    diag = np.diag(g)
    dist = np.maximum(diag[:, None] + diag[None, :] - 2.0 * g, 0.0)
    np.fill_diagonal(dist, 0.0)
    return dist


def _square(gram: np.ndarray) -> np.ndarray:
    g = np.asarray(gram, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or np.any(np.isinf(g)):
        raise ValueError(
            f"Gram matrix: need a square matrix of finite values or NaN, got shape {g.shape}"
        )
    return g


def select_from_gram(
    rule: str, gram: np.ndarray, *, f: int = 1, clip: bool = False
) -> RobustSelection:
    """The rows ``rule`` accepts, from the Gram matrix alone (rows in canonical order). NaN marks a
    scalar the key holder could not read within range: a row whose squared norm is NaN (or negative,
    which only a value that wrapped around the modulus gives) is out of range, and so are both rows
    of a NaN between two others (impossible for honest values: ``|<a, b>| <= max(|a|^2, |b|^2)``).
    An out-of-range row is never accepted and counts as farther from every row than any readable
    distance: the rule still runs over all ``n`` rows, as in the clear, where such an update (its
    squared norm beyond the scalar bound) lies far from the others. Leaving it out before the rule
    would shrink Krum's ``n - f - 2`` neighbours and change which honest row wins
    (``scripts/bench_ckks_krum_gaussian.py``). The rule needs its ``min_updates(f)`` readable rows."""
    g = _square(gram)
    chosen = make_rule(rule, f)
    if not chosen.from_distances:
        raise ValueError(
            f"aggregation rule {rule!r} needs the updates themselves; over ckks choose one of "
            f"the rules computable from distances (krum, multi-krum)"
        )
    bad = np.isnan(np.diag(g)) | (
        np.diag(g) < -GRAM_ABS_ERR
    )  # a negative squared norm has wrapped around
    bad |= np.any(np.isnan(g) & ~bad[None, :], axis=1) & ~bad  # a NaN with another in-range row
    ok = [i for i in range(len(g)) if not bad[i]]
    if len(ok) < chosen.min_updates(f):
        raise ValueError(
            f"{rule} with f = {f} needs at least {chosen.min_updates(f)} updates in range; "
            f"{len(ok)} of {len(g)} are (Krum needs n >= 2f + 3)"
        )
    sub = g[np.ix_(ok, ok)]
    scales = np.zeros(len(g))
    scales[ok] = norm_scales(np.sqrt(np.maximum(np.diag(sub), 0.0))) if clip else 1.0
    s = scales[ok]
    dist = np.full((len(g), len(g)), np.inf)
    dist[np.ix_(ok, ok)] = distances_from_gram(sub * np.outer(s, s))
    np.fill_diagonal(dist, 0.0)
    accepted = [i for i in chosen.select_from_distances(dist) if not bad[i]]
    return RobustSelection(accepted, scales, tuple(i for i in range(len(g)) if bad[i]))


def factor_integers(scales: np.ndarray) -> np.ndarray:
    """The integers ``round(s * 2^FACTOR_BITS)`` by which the aggregator multiplies each ciphertext
    (a constant plaintext at scale 1: exact, no level spent); int64, in ``0..2^FACTOR_BITS``."""
    s = np.asarray(scales, dtype=np.float64)
    if not np.all((s >= 0) & (s <= 1)):
        raise ValueError("norm-bounding factors must lie in [0, 1]")
    return np.round(s * 2.0**FACTOR_BITS).astype(np.int64)


def audit_selection(
    rule: str,
    gram: np.ndarray,
    addresses: list[str],
    accepted: list[str],
    *,
    f: int = 1,
    clip: bool = False,
) -> None:
    """Raise ValueError unless ``accepted`` is exactly what ``rule`` selects from ``gram``, whose
    rows belong to ``addresses`` in the canonical order (ascending lower-case address)."""
    if [a.lower() for a in addresses] != sorted(a.lower() for a in addresses) or len(
        addresses
    ) != len(gram):
        raise ValueError(
            "audit: the Gram rows must be the members in ascending address order, one each"
        )
    want = [addresses[i].lower() for i in select_from_gram(rule, gram, f=f, clip=clip).accepted]
    got = sorted(a.lower() for a in accepted)
    if got != want:
        raise ValueError(
            f"audit: {rule} on the published scalars accepts {want}, the record says {got}"
        )


def check_sum(
    total: np.ndarray,
    gram: np.ndarray,
    selection: RobustSelection,
    *,
    rel_tol: float = CHECK_REL_TOL,
) -> None:
    """Raise ValueError unless ``|total|^2`` (the decrypted sum of the accepted, scaled updates)
    equals the sum of their scaled Gram block, within ``rel_tol`` of ``(sum_a s_a |u_a|)^2`` plus
    the CKKS noise floors (``|S|^2`` Gram entries, ``d`` summed values); ``s_a`` as the ciphertexts
    get them (:func:`factor_integers`)."""
    g, rows = _square(gram), selection.accepted
    s = factor_integers(selection.scales[rows]) / 2.0**FACTOR_BITS  # as applied to the ciphertexts
    block = g[np.ix_(rows, rows)] * np.outer(s, s)
    want = math.fsum(block.ravel())
    got = math.fsum(np.asarray(total, dtype=np.float64) ** 2)
    scale = (
        math.fsum(np.sqrt(np.maximum(np.diag(block), 0.0))) ** 2
    )  # (sum_a s_a |u_a|)^2 bounds |both|
    noise = (
        len(rows) ** 2 * GRAM_ABS_ERR + 2 * math.sqrt(max(want, 0.0) * np.size(total)) * SUM_ABS_ERR
    )
    if abs(got - want) > rel_tol * scale + noise:
        raise ValueError(
            f"the decrypted sum's squared norm {got:.9g} differs from {want:.9g}, the published "
            f"scalars' value: a Gram entry or the sum was tampered with"
        )


class NoiseModel(Protocol):
    """Bounds of the CKKS error (:class:`node.crypto.ckks.noise.InnerProductNoise`)."""

    def bound(self, norm_a: float, norm_b: float, length: int, tail: float) -> float: ...

    def sum_term(self, norm: float, length: int) -> float: ...


class RowTolerance(NamedTuple):
    norm: float  # on G[a, a]
    row_sum: float  # on sum_{c in S} s_c G[a, c] - <u_a, sum>
    pairs: np.ndarray  # on each G[a, c] beyond Cauchy-Schwarz (inf outside the accepted set)


def _rounding(d: int) -> float:
    """gamma_d (Higham): the relative float64 error bound of a d-term dot product."""
    u = 2.0**-53
    return d * u / (1 - d * u)


class OwnRow(NamedTuple):
    """What a member checks its row with: the update it encrypted, as the ciphertext holds it (after
    ``clip_norm``), the decrypted sum of the accepted (scaled) updates, and its row's index."""

    own: np.ndarray
    total: np.ndarray
    row: int


def row_tolerance(
    mine: OwnRow, gram: np.ndarray, selection: RobustSelection, noise: NoiseModel, tail: float
) -> RowTolerance:
    """How far an honest key holder's row may lie from what this member's update gives: the CKKS
    error bound (:class:`NoiseModel`, ``tail`` standard deviations of its value-independent part),
    plus the float64 rounding of the dot products. Other members' norms
    are read from the published diagonal; a key holder that inflates an accepted member's norm
    widens this by at most ``sqrt(chunks)`` (fresh + conj) ``sqrt(2^17)``, 1.2e-3 per chunk for
    ``ROBUST_PARAMS`` (and that member's own check fails)."""
    (own, total, row), g, rows = mine, _square(gram), selection.accepted
    norm = float(np.linalg.norm(own))
    norms = np.sqrt(np.maximum(np.nan_to_num(np.diag(g), nan=0.0), 0.0))
    s = factor_integers(selection.scales[rows]) / 2.0**FACTOR_BITS  # as the ciphertexts got them
    d = int(np.size(own))
    gamma = _rounding(d)
    honest = [noise.bound(norm, float(norms[c]), d, tail) + noise.sum_term(norm, d) for c in rows]
    row_sum = float(np.dot(s, honest)) + gamma * norm * float(np.linalg.norm(total))
    row_sum += 2.0**-52 * float(np.nansum(np.abs(s * g[row, rows])))
    pairs = np.full(len(g), np.inf)
    for c in rows:
        t_cc = noise.bound(float(norms[c]), float(norms[c]), d, tail)
        t_ac = noise.bound(norm, float(norms[c]), d, tail)
        pairs[c] = norm * math.sqrt(norms[c] ** 2 + t_cc) - norm * norms[c] + t_ac
    return RowTolerance(noise.bound(norm, norm, d, tail) + gamma * norm**2, row_sum, pairs)


def check_own_row(
    mine: OwnRow,
    gram: np.ndarray,
    selection: RobustSelection,
    noise: NoiseModel,
    *,
    bound: float,
    tail: float,
) -> None:
    """Raise ValueError, naming the check, unless this member's row of the published ``gram`` agrees
    with ``own``, the update it encrypted, and ``total``, the published sum of the accepted (scaled)
    updates (:class:`OwnRow`): (1) ``G[a, a] = |own|^2``; (2) ``sum_{c in S} s_c G[a, c] = <own, total>``;
    (3) ``|G[a, c]| <= |own| sqrt(G[c, c])`` for each accepted ``c``; within :func:`row_tolerance`.
    A row whose norm reaches the scalar ``bound`` is not checked (an honest key holder publishes NaN,
    or a value wrapped around the modulus, for it)."""
    (own, total, row), g = mine, _square(gram)
    tol = row_tolerance(mine, g, selection, noise, tail)
    norm2 = math.fsum(np.asarray(own, dtype=np.float64) ** 2)
    if norm2 + tol.norm >= bound:
        return
    published = g[row, row]
    if not abs(published - norm2) <= tol.norm:
        raise ValueError(
            f"its squared norm {published:.9g} is not the {norm2:.9g} this member encrypted "
            f"(tolerance {tol.norm:.3g})"
        )
    rows = selection.accepted
    s = factor_integers(selection.scales[rows]) / 2.0**FACTOR_BITS
    got = math.fsum(s * g[row, rows])
    want = float(np.dot(np.asarray(own, dtype=np.float64), np.asarray(total, dtype=np.float64)))
    if not abs(got - want) <= tol.row_sum:
        raise ValueError(
            f"its row sums to {got:.9g} over the accepted members, but <own update, decrypted sum> "
            f"is {want:.9g} (tolerance {tol.row_sum:.3g})"
        )
    norms = np.sqrt(np.maximum(np.diag(g), 0.0))
    over = [c for c in rows if not abs(g[row, c]) <= math.sqrt(norm2) * norms[c] + tol.pairs[c]]
    if over:
        raise ValueError(
            f"its inner products with rows {over} exceed |own| |u_c| (Cauchy-Schwarz) beyond "
            f"the tolerance"
        )
