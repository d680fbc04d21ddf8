"""What ``medmesh demo`` shows: a progress bar while the rounds run, and the summary it prints at
the end (:func:`format_report`: per round the AUC, accuracy, each hospital's spent epsilon, the
bytes sent, finalization and the aggregate's hash; then the baselines, the credits, and whether
every peer holds the same model). :mod:`node.sim.demo` runs the campaign and builds the report.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.peer.outcome import RoundOutcome
    from node.sim.democonfig import DemoConfig

__all__ = ["Progress", "format_report", "max_epsilon", "round_epsilons"]


def round_epsilons(results: dict[str, RoundOutcome]) -> dict[str, float | None]:
    """Each hospital's spent epsilon after the round; None where it trained nothing this round
    (its budget refused the round, or it was offline): the table shows "—", not a 0.000 that
    reads as no privacy spent."""
    return {name: round(o.epsilon, 4) if o.samples else None for name, o in results.items()}


class Progress:
    """A per-round progress bar on stderr (tqdm), silent when not on a terminal."""

    def __init__(self, cfg: DemoConfig) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=cfg.rounds,
            desc="federated rounds",
            unit="round",
            file=sys.stderr,
            disable=not (cfg.progress and sys.stderr.isatty()),
        )

    def update(self, row: dict) -> None:
        self._bar.set_postfix(auc=row["auc"], finalized=row["finalized"])
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _eps_cell(epsilon: float | None) -> str:
    return f"{'—':>7}" if epsilon is None else f"{epsilon:>7.3f}"


def max_epsilon(row: dict) -> float:
    """The largest epsilon a hospital reported in one round of the report (0 if none trained)."""
    return max((e for e in row["epsilon"].values() if e is not None), default=0.0)


def format_report(report: dict) -> str:
    """The human-readable summary printed at the end of the demo."""
    names = list(report["hospitals"])
    short = [n.replace("hospital-", "") for n in names]
    lines = [
        "",
        "medmesh demo: {hospitals} hospitals, {rounds} rounds, rule={rule}, protection={protection}, "
        "model={model}, "
        "target epsilon={epsilon} (delta={delta}, {accountant} accountant)".format(
            **report["config"]
        ),
        "",
    ]
    head = (
        f"{'round':>5} {'AUC':>7} {'acc':>7} "
        + " ".join(f"{'eps ' + s:>7}" for s in short)
        + f" {'bytes sent':>11} {'final':>6}  aggregate"
    )
    lines += [head, "-" * len(head)]
    for r in report["rounds"]:
        eps = " ".join(_eps_cell(r["epsilon"].get(n)) for n in names)
        lines.append(
            f"{r['round']:>5} {r['auc']:>7.4f} {r['accuracy']:>7.4f} {eps} {r['bytes_sent']:>11,}"
            f" {'yes' if r['finalized'] else 'NO':>6}  {(r['aggregate_hash'] or 'disagreement')[:16]}"
        )
    left = [
        f"round {r['round']}: {', '.join(r['left_out'])}"
        for r in report["rounds"]
        if r.get("left_out")
    ]
    if left:
        lines += ["", "left out of the aggregate by the rule: " + "; ".join(left)]
    b = report["baselines"]
    lines += [
        "",
        "baselines on the same held-out set:",
        f"  centralized (pooled rows, no DP)   AUC {b['centralized']['auc']:.4f}"
        f"  acc {b['centralized']['accuracy']:.4f}",
    ]
    for n, s in b["local_only"].items():
        lines.append(
            f"  local only, {n:<12} (same DP)  AUC {s['auc']:.4f}  acc {s['accuracy']:.4f}"
        )
    if report["rounds"]:
        final = report["rounds"][-1]
        gap = b["centralized"]["auc"] - final["auc"]
        lines += [
            "",
            f"federated AUC {final['auc']:.4f} vs centralized {b['centralized']['auc']:.4f} "
            f"(gap {gap:+.4f}) at epsilon <= {max_epsilon(final):.3f}",
        ]
    lines.append(
        "credits (MMC): "
        + ", ".join(f"{n} {h['credits']:.2f}" for n, h in report["hospitals"].items())
    )
    lines.append(f"all peers hold the same model: {'yes' if report['peers_agree'] else 'NO'}")
    return "\n".join(lines)
