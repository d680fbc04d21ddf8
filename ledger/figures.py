"""The audit of self-reported figures: sample counts against each member's declared cohort,
privacy spend against each member's declared budget, and rejections against attestations.

The contracts refuse each breach below when it is attempted (``RoundLedgerSamplesAboveCohort``,
``RoundLedgerEpsilonDecreased``, ``RoundLedgerEpsilonOverBudget``, ``RoundLedgerZeroEpsilon``,
``RoundLedgerContradictoryRejection``); the audit checks the same invariants on the history
rebuilt from the logs anyway, so that a regulator's audit proves them for the whole chain
(including history written by a contract version that did not refuse them) instead of
trusting the code that should have. A member's figures are its own claims: a cohort rests on
the endorsement of the members that admitted it, an epsilon on the member's accountant; the
audit bounds them and checks their consistency, it cannot see the data behind them. See
docs/ledger-figures.md.

Sample counts far above the round's median are *flagged* (listed under ``flags``), not failed:
a large hospital is not a breach, but a regulator should look at it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from .records import EPSILON_SCALE

__all__ = ["OUTLIER_FACTOR", "check_figures", "privacy_by_hospital"]

#: A committed sample count above this multiple of its round's median is flagged.
OUTLIER_FACTOR = 10


def _micros(epsilon: float) -> int:
    return round(epsilon * EPSILON_SCALE)


def privacy_by_hospital(history: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per account that declared a budget or committed: its declared ``budget`` (None if it
    declared none) and its cumulative ``spend`` per round, in round order."""
    out: dict[str, dict[str, Any]] = {}
    for ident in history["identities"]:
        if ident.get("privacy_budget") is not None:
            out[ident["account"]] = {"budget": ident["privacy_budget"], "spend": []}
    for r in history["rounds"]:
        for c in r["commits"]:
            entry = out.setdefault(c["account"], {"budget": None, "spend": []})
            entry["spend"].append({"round": r["round"], "epsilon": c["epsilon"]})
    return out


def _spend_problems(budget: dict[str, Any] | None, spend: list[dict[str, Any]]) -> list[str]:
    if budget is None:
        return (
            [f"committed in round {spend[0]['round']} without a declared privacy budget"]
            if spend
            else []
        )
    problems = []
    cap, previous = _micros(budget["epsilon"]), 0
    for s in spend:
        eps = _micros(s["epsilon"])
        if eps < previous:
            problems.append(
                f"epsilon decreases in round {s['round']} ({previous / EPSILON_SCALE:g} -> {s['epsilon']:g})"
            )
        if eps > cap:
            problems.append(
                f"epsilon {s['epsilon']:g} in round {s['round']} exceeds its budget {budget['epsilon']:g}"
            )
        if cap and not eps:
            problems.append(f"epsilon 0 in round {s['round']} under a DP budget")
        previous = max(previous, eps)
    return problems


def check_figures(
    history: dict[str, Any], check: Callable[[str, bool, str], None]
) -> list[dict[str, Any]]:
    """Add the figure checks to ``check``; return the flagged (not failed) outliers."""
    cohorts = {i["account"]: i.get("cohort", 0) for i in history["identities"]}
    flags: list[dict[str, Any]] = []
    for r in history["rounds"]:
        rnd = r["round"]
        over = [c for c in r["commits"] if c["samples"] > cohorts.get(c["account"], 0)]
        check(
            f"round {rnd}: every committed sample count is within its committer's declared cohort",
            not over,
            "; ".join(
                f"{c['account']} claims {c['samples']} samples, above its cohort {cohorts.get(c['account'], 0)}"
                for c in over
            ),
        )
        counts = [c["samples"] for c in r["commits"]]
        if len(counts) >= 3:
            median = statistics.median(counts)
            for c in r["commits"]:
                if c["samples"] > OUTLIER_FACTOR * median:
                    flags.append(
                        {
                            "round": rnd,
                            "account": c["account"],
                            "samples": c["samples"],
                            "median": median,
                            "why": f"more than {OUTLIER_FACTOR}x the round's median sample count",
                        }
                    )
        accepted_by = {att["account"]: set(att["accepted"]) for att in r["attestations"]}
        contradictory = [
            x for x in r["rejections"] if x["account"] in accepted_by.get(x["reporter"], set())
        ]
        check(
            f"round {rnd}: no member rejected an update in its own accepted set",
            not contradictory,
            "; ".join(
                f"{x['reporter']} rejected {x['account']} ({x['reason_name']}) and accepted it"
                for x in contradictory
            ),
        )
    for account, entry in history["privacy"].items():
        problems = _spend_problems(entry["budget"], entry["spend"])
        check(
            f"privacy spend of {account} never decreases and stays within its declared budget",
            not problems,
            "; ".join(problems),
        )
    return flags
