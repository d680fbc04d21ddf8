"""What a simulation shows, per scheme: credits per hospital, their share, the hospital's
Shapley value (exact when every round was small enough, else the GTG estimate), the Gini
coefficient, the free-riders' and poisoners' shares, and the rank correlation (Spearman)
between credits and Shapley values. As text tables, CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from .fairness import gini
from .simulate import CREDIT_UNIT, SimulationResult

__all__ = [
    "HospitalRow",
    "SchemeSummary",
    "shapley_reference",
    "summarize",
    "format_tables",
    "write_csv",
    "write_json",
]


@dataclass(frozen=True)
class HospitalRow:
    hospital: str
    role: str
    profile: str
    samples: int
    credits: float  # whole credits (MMC)
    share: float
    shapley: float


@dataclass(frozen=True)
class SchemeSummary:
    scheme: str
    rows: tuple[HospitalRow, ...]
    total: float
    gini: float
    free_rider_share: float
    poisoner_share: float
    spearman_vs_shapley: float | None
    balances_match_chain: bool


def shapley_reference(result: SimulationResult) -> tuple[dict[str, float], str]:
    """Each hospital's Shapley value summed over the finalized rounds: exact if every such round
    had its exact values, else the GTG-Shapley estimate; and which one it is."""
    done = [r for r in result.rounds if r.finalized]
    exact = bool(done) and all(r.shapley_exact is not None for r in done)
    values = {h["name"]: 0.0 for h in result.hospitals}
    for r in done:
        for name, v in ((r.shapley_exact if exact else r.shapley_gtg) or {}).items():
            values[name] += v
    return values, "exact" if exact else "GTG-Shapley estimate"


def summarize(result: SimulationResult) -> list[SchemeSummary]:
    shapley, _ = shapley_reference(result)
    roles = {h["name"]: h["role"] for h in result.hospitals}
    out = []
    for scheme, balances in result.computed.items():
        total = sum(balances.values())
        share = {n: (b / total if total else 0.0) for n, b in balances.items()}
        rows = tuple(
            HospitalRow(
                h["name"],
                h["role"],
                h["profile"],
                h["samples"],
                balances[h["name"]] / CREDIT_UNIT,
                share[h["name"]],
                shapley[h["name"]],
            )
            for h in result.hospitals
        )
        credits = [float(balances[h["name"]]) for h in result.hospitals]
        reference = [shapley[h["name"]] for h in result.hospitals]
        rho = None
        if len(set(credits)) > 1 and len(set(reference)) > 1:
            rho = float(spearmanr(credits, reference).statistic)
            rho = None if math.isnan(rho) else rho
        out.append(
            SchemeSummary(
                scheme=scheme,
                rows=rows,
                total=total / CREDIT_UNIT,
                gini=gini([max(c, 0.0) for c in credits]),
                free_rider_share=sum(s for n, s in share.items() if roles[n] == "free-rider"),
                poisoner_share=sum(s for n, s in share.items() if roles[n] == "poisoner"),
                spearman_vs_shapley=rho,
                balances_match_chain=result.on_chain.get(scheme) == balances,
            )
        )
    return out


def format_tables(result: SimulationResult, summaries: list[SchemeSummary]) -> str:
    _, kind = shapley_reference(result)
    sc = result.scenario
    done = sum(r.finalized for r in result.rounds)
    first = next((r for r in result.rounds if r.finalized), None)
    last = next((r for r in reversed(result.rounds) if r.finalized), None)
    lines = [
        f"scenario {sc.name}: {sc.n_hospitals} hospitals, {done}/{len(result.rounds)} rounds finalized, "
        f"rule {sc.rule}, utility {sc.metric} on the validation set"
    ]
    if first and last:
        lines.append(
            f"validation {sc.metric}: {first.metric_before:.4f} before round 1, {last.metric_after:.4f} "
            f"after round {last.round}; chain {result.chain['rpc']} (id {result.chain['chain_id']})"
        )
    lines.append(
        f"Shapley column: {kind}; credits in MMC, at most {sc.budget_per_round} per round per "
        + (
            f"scheme, {sc.budget_per_round} per {sc.value_unit:g} of {sc.metric} gained"
            if sc.mint == "value"
            else "scheme, all of it every round"
        )
    )
    for s in summaries:
        rho = "n/a" if s.spearman_vs_shapley is None else f"{s.spearman_vs_shapley:+.3f}"
        lines += [
            "",
            f"== {s.scheme}: total {s.total:.2f}, Gini {s.gini:.3f}, free-riders {s.free_rider_share:.1%}, "
            f"poisoners {s.poisoner_share:.1%}, Spearman(credits, Shapley) {rho}, "
            f"on chain {'= computed' if s.balances_match_chain else 'DIFFERS'}"
            + (
                "; GAMEABLE: no declared cohorts, claims capped only at the median claim"
                if s.scheme == "data-size" and not sc.declared_cohorts
                else ""
            ),
            f"{'hospital':<12} {'profile':<14} {'samples':>7} {'credits':>10} {'share':>7} {'shapley':>9}",
        ]
        lines += [
            f"{r.hospital:<12} {r.profile:<14} {r.samples:>7} {r.credits:>10.2f} {r.share:>7.1%} {r.shapley:>+9.4f}"
            for r in s.rows
        ]
    return "\n".join(lines)


def write_csv(
    result: SimulationResult, summaries: list[SchemeSummary], directory: Path
) -> list[Path]:
    """``credits.csv`` (one row per scheme and hospital), ``schemes.csv`` (one per scheme) and
    ``rounds.csv`` (values and credits per round, scheme and hospital)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "credits.csv", directory / "schemes.csv", directory / "rounds.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["scheme", "hospital", "role", "profile", "samples", "credits", "share", "shapley"]
        )
        for s in summaries:
            for r in s.rows:
                w.writerow(
                    [
                        s.scheme,
                        r.hospital,
                        r.role,
                        r.profile,
                        r.samples,
                        f"{r.credits:.6f}",
                        f"{r.share:.6f}",
                        f"{r.shapley:.6f}",
                    ]
                )
    with paths[1].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "scheme",
                "total",
                "gini",
                "free_rider_share",
                "poisoner_share",
                "spearman_vs_shapley",
                "balances_match_chain",
            ]
        )
        for s in summaries:
            w.writerow(
                [
                    s.scheme,
                    f"{s.total:.6f}",
                    f"{s.gini:.6f}",
                    f"{s.free_rider_share:.6f}",
                    f"{s.poisoner_share:.6f}",
                    "" if s.spearman_vs_shapley is None else f"{s.spearman_vs_shapley:.6f}",
                    s.balances_match_chain,
                ]
            )
    with paths[2].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "round",
                "chain_round",
                "finalized",
                "scheme",
                "hospital",
                "participated",
                "accepted",
                "credits",
                "burned",
                "shapley_gtg",
                "shapley_exact",
                "leave_one_out",
                "reputation",
            ]
        )
        for rec in result.rounds:
            for scheme in result.computed:
                for h in result.hospitals:
                    n = h["name"]
                    exact = (
                        ""
                        if rec.shapley_exact is None or n not in rec.shapley_exact
                        else f"{rec.shapley_exact[n]:.6f}"
                    )
                    w.writerow(
                        [
                            rec.round,
                            rec.chain_round,
                            rec.finalized,
                            scheme,
                            n,
                            n in rec.participants,
                            n in rec.accepted,
                            rec.credits.get(scheme, {}).get(n, 0) / CREDIT_UNIT,
                            rec.burned.get(scheme, {}).get(n, 0) / CREDIT_UNIT,
                            _fmt(rec.shapley_gtg.get(n)),
                            exact,
                            _fmt(rec.leave_one_out.get(n)),
                            _fmt(rec.reputation.get(n)),
                        ]
                    )
    return paths


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def write_json(result: SimulationResult, summaries: list[SchemeSummary], path: Path) -> None:
    document: dict[str, Any] = result.to_json()
    document["summary"] = [asdict(s) for s in summaries]
    document["shapley_reference"] = shapley_reference(result)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
