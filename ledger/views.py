"""What ``medmesh audit`` shows: table views of an audit report (identities, rounds, one round,
alerts, credits, awards, one peer), each a list of flat rows (dicts) that :func:`render` prints
as an aligned table, JSON or CSV.

Model-file verification lives in :mod:`ledger.model_check` (re-exported here) and the HTML
transparency report in :mod:`ledger.html_report`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .errors import LedgerError
from .model_check import PARAMS_DOMAIN, parameters_hash, read_model_file, verify_model

__all__ = [
    "PARAMS_DOMAIN",
    "alert_rows",
    "award_rows",
    "credit_rows",
    "identity_rows",
    "parameters_hash",
    "peer_view",
    "read_model_file",
    "render",
    "round_rows",
    "round_view",
    "scheme_label",
    "verify_model",
]


def _credits(wei: int) -> float:
    return round(wei / 10**18, 6)


def identity_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "account": i["account"],
            "peer_id": i["peer_id"],
            "institution_id": i["institution_id"],
            "status": i["status"],
            "bond_wei": i["bond"],
            "cohort": i.get("cohort"),
            "admitted_block": i["admitted_block"],
            "admission": "genesis"
            if i["genesis"]
            else ("endorsed" if i["genesis"] is False else "-"),
            "endorsements": len(i["endorsed_by"]),
            "key_rotations": i["key_rotations"],
        }
        for i in report["identities"]
    ]


def round_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "round": r["round"],
            "status": r["status"],
            "aggregate_hash": r["aggregate_hash"] or "",
            "commits": len(r["commits"]),
            "accepted": len(r["accepted"]),
            "excluded": len(r["excluded"]),
            "rejections": len(r["rejections"]),
            "attestations": len(r["attestations"]),
            "dissent": len(r["dissenters"]),
            "credits_minted": _credits(sum(r["credited"].values())),
            "opened_block": r["opened_block"],
        }
        for r in report["rounds"]
    ]


def alert_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per ``AlertRecorded`` event: a member's signed record of a monitoring alert (its
    kind, the round, keccak-256 of the alert's JSON body, which the member keeps)."""
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    return [
        {
            "round": r["round"],
            "kind": x["kind"],
            "reporter": x["reporter"],
            "peer_id": peers.get(x["reporter"], ""),
            "body_hash": x["body_hash"],
            "block": x["block"],
        }
        for r in report["rounds"]
        for x in r.get("alerts", [])
    ]


def _find_round(report: dict[str, Any], number: int) -> dict[str, Any]:
    for r in report["rounds"]:
        if r["round"] == number:
            return r
    raise LedgerError(f"round {number} never opened (rounds 1..{len(report['rounds'])})")


def round_view(report: dict[str, Any], number: int) -> list[dict[str, Any]]:
    """One row per member that committed, attested or was rejected in round ``number``."""
    r = _find_round(report, number)
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    commits = {c["account"]: c for c in r["commits"]}
    attests = {a["account"]: a for a in r["attestations"]}
    rejected: dict[str, list[str]] = {}
    for x in r["rejections"]:
        rejected.setdefault(x["account"], []).append(x["reason_name"])
    rows = []
    for account in list(commits) + [a for a in attests if a not in commits]:
        c, a = commits.get(account), attests.get(account)
        rows.append(
            {
                "account": account,
                "peer_id": peers.get(account, ""),
                "update_hash": c["update_hash"] if c else "",
                "samples": c["samples"] if c else "",
                "epsilon": c["epsilon"] if c else "",
                "mode": c["mode"] if c else "",
                "accepted": ("yes" if account in r["accepted"] else "no")
                if c and r["finalized"]
                else "",
                "rejected_by": ",".join(rejected.get(account, [])),
                "attested": a["aggregate_hash"] if a else "",
                "vote": ("agrees" if a["agrees"] else "DISSENT")
                if a and a["agrees"] is not None
                else "",
                "credited": _credits(r["credited"].get(account, 0)),
                "slashed": _credits(r["slashed"].get(account, 0)),
            }
        )
    return rows


def scheme_label(key: str) -> str:
    """A distributor's column name: ``IncentiveDistributor[shapley-gtg]`` -> ``shapley-gtg``."""
    return key[key.index("[") + 1 : -1] if key.endswith("]") and "[" in key else key


def credit_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per holder: the RoundLedger's credits (``credits``, ``wei``), then, when the
    deployment has IncentiveDistributors, the credits each one's token holds (one column each)."""
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    incentives = report.get("incentives", {})
    holders = list(report["credits"]) + sorted(
        {a for d in incentives.values() for a, v in d["balances"].items() if v}
        - set(report["credits"])
    )
    return [
        {
            "account": k,
            "peer_id": peers.get(k, ""),
            "credits": _credits(report["credits"].get(k, 0)),
            "wei": report["credits"].get(k, 0),
            **{
                scheme_label(key): _credits(d["balances"].get(k, 0))
                for key, d in incentives.items()
            },
        }
        for k in holders
    ]


def award_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every distributor award, one row per account it credited or penalized, round by round."""
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    rows = []
    for key, d in report.get("incentives", {}).items():
        for aw in d["awards"]:
            for account in sorted(
                set(aw["grants"]) | set(aw["penalties"]), key=lambda a: int(a, 16)
            ):
                p = aw["penalties"].get(account, {"penalty": 0, "burned": 0})
                rows.append(
                    {
                        "distributor": scheme_label(key),
                        "scheme": aw["scheme"],
                        "round": aw["round"],
                        "account": account,
                        "peer_id": peers.get(account, ""),
                        "awarded": _credits(aw["grants"].get(account, 0)),
                        "penalty": _credits(p["penalty"]),
                        "burned": _credits(p["burned"]),
                        "round_total": _credits(aw["total"]),
                    }
                )
    return rows


def peer_view(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Round-by-round record of one member, named by peer ID or account."""
    match = [
        i
        for i in report["identities"]
        if key in (i["peer_id"], i["account"]) or key.lower() == i["account"].lower()
    ]
    if not match:
        raise LedgerError(f"no registered identity has peer ID or account {key}")
    account = match[0]["account"]
    rows = []
    for r in report["rounds"]:
        for row in round_view(report, r["round"]):
            if row["account"] == account:
                rows.append(
                    {
                        "round": r["round"],
                        "status": r["status"],
                        **{k: v for k, v in row.items() if k not in ("account", "peer_id")},
                    }
                )
    return rows


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """``rows`` as ``table``, ``json`` or ``csv``."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if not rows:
        return "(none)"
    headers = list(rows[0])
    cells = [headers] + [["" if row[h] is None else str(row[h]) for h in headers] for row in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
