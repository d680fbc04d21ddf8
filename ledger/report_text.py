"""The audit report as text: :func:`format_report` renders a :func:`ledger.audit.collect`
report as aligned tables (chain and anchors, identities, rounds with their commits and votes,
alerts, credits, privacy budgets and spend, incentive awards) and ends with the failed checks."""

from __future__ import annotations

from typing import Any

from .views import alert_rows, scheme_label

__all__ = ["format_report"]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [
        ["" if v is None else str(v) for v in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _short(value: str | None, keep: int = 10) -> str:
    if not value:
        return "-"
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}..{value[-4:]}"


def _credits(wei: int) -> str:
    return f"{wei / 10**18:,.6f}"


def format_report(report: dict[str, Any]) -> str:
    """Readable tables of a :func:`collect` report."""
    chain = report["chain"]
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    out = [
        f"medmesh audit: chain {chain['chain_id']} read from {chain['rpc']}, head block {chain['head_block']}"
        + (f" ({chain['head_hash']})" if chain.get("head_hash") else ""),
        f"genesis: {chain.get('genesis')}"
        + (
            f"; the deployment file names rpc {chain['deployment_rpc']}"
            if chain.get("deployment_rpc") not in (None, chain["rpc"], "embedded")
            else ""
        ),
        _anchor_line(chain),
        "contracts: " + ", ".join(f"{k} {v}" for k, v in chain["contracts"].items()),
        f"admin: {chain['admin']}",
        "",
        f"Identities ({len(report['identities'])})",
        _table(
            ["account", "peer id", "institution id", "status", "cohort", "registered", "admitted"],
            [
                [
                    i["account"],
                    i["peer_id"],
                    _short(i["institution_id"]),
                    i["status"],
                    i.get("cohort", "-"),
                    i["registered_block"],
                    i["admitted_block"],
                ]
                for i in report["identities"]
            ],
        ),
    ]
    for r in report["rounds"]:
        out += [
            "",
            f"Round {r['round']}: {r['status']}, opened by {_short(peers.get(r['opener'], r['opener']), 14)}"
            + (f", aggregate {r['aggregate_hash']}" if r["aggregate_hash"] else ""),
            _table(
                [
                    "committer",
                    "peer id",
                    "update hash",
                    "samples",
                    "epsilon",
                    "mode",
                    "accepted",
                    "credited",
                ],
                [
                    [
                        _short(c["account"]),
                        _short(c["peer_id"], 14),
                        _short(c["update_hash"]),
                        c["samples"],
                        f"{c['epsilon']:g}",
                        c["mode"],
                        "yes" if c["account"] in r["accepted"] else "-",
                        _credits(r["credited"].get(c["account"], 0)),
                    ]
                    for c in r["commits"]
                ],
            ),
        ]
        if r["attestations"]:
            out += [
                _table(
                    ["attester", "peer id", "aggregate hash", "accepted", "vote key", "votes"],
                    [
                        [
                            _short(a["account"]),
                            _short(peers.get(a["account"]), 14),
                            _short(a["aggregate_hash"]),
                            len(a["accepted"]),
                            _short(a["vote_key"]),
                            r["votes"][a["vote_key"]],
                        ]
                        for a in r["attestations"]
                    ],
                )
            ]
    alerts = alert_rows(report)
    if alerts:
        rows = [list(a.values()) for a in alerts]
        out += ["", f"Alerts recorded on chain ({len(alerts)})", _table(list(alerts[0]), rows)]
    out += [
        "",
        f"Credits (total supply {_credits(report['total_supply'])} MMC)",
        _table(
            ["account", "peer id", "MMC"],
            [[k, peers.get(k, "-"), _credits(v)] for k, v in report["credits"].items()],
        ),
    ]
    out += _privacy_tables(report, peers)
    out += _incentive_tables(report, peers)
    out += [
        "",
        f"Checks: {sum(c['ok'] for c in report['checks'])}/{len(report['checks'])} passed"
        + ("" if report["ok"] else " -- FAILURES:"),
    ]
    out += [f"  FAIL {c['check']} {c['detail']}".rstrip() for c in report["checks"] if not c["ok"]]
    return "\n".join(out)


def _anchor_line(chain: dict[str, Any]) -> str:
    if "anchors" not in chain:
        return "anchors: not checked"
    anchors = chain["anchors"]
    given = len(anchors.get("genesis", [])) + int(anchors.get("heads", 0))
    if anchors.get("heads"):
        return f"anchors: {given} checked, {anchors['heads']} of them past genesis (members' records or known heads)"
    return (
        f"anchors: {given} checked, none past genesis: this proves the chain consistent, not that it is the "
        "consortium's; give --expect-head with a member's attestation record"
    )


def _privacy_tables(report: dict[str, Any], peers: dict[str, str]) -> list[str]:
    """Each member's declared budget and its cumulative epsilon round by round; flagged figures."""
    privacy = report.get("privacy", {})
    out: list[str] = []
    if privacy:
        rows = []
        for account, entry in privacy.items():
            b = entry["budget"] or {}
            spend = ", ".join(f"r{s['round']} {s['epsilon']:g}" for s in entry["spend"]) or "-"
            rows.append(
                [
                    _short(account),
                    _short(peers.get(account), 14),
                    b.get("accountant", "NONE DECLARED"),
                    f"{b['epsilon']:g}" if b else "-",
                    f"{b['delta']:g}" if b else "-",
                    f"{b['noise_multiplier']:g}" if b else "-",
                    f"{b['clip_norm']:g}" if b else "-",
                    spend,
                ]
            )
        out += [
            "",
            "Privacy budgets and cumulative spend (epsilon after each round)",
            _table(
                [
                    "account",
                    "peer id",
                    "accountant",
                    "budget eps",
                    "delta",
                    "noise",
                    "clip",
                    "spend",
                ],
                rows,
            ),
        ]
    flags = report.get("flags", [])
    if flags:
        out += ["", f"Flagged figures ({len(flags)}; not failures, worth a look)"]
        out += [
            f"  round {f['round']}: {f['account']} claims {f['samples']} samples, {f['why']} ({f['median']:g})"
            for f in flags
        ]
    return out


def _incentive_tables(report: dict[str, Any], peers: dict[str, str]) -> list[str]:
    """Per IncentiveDistributor: its awards round by round, then every holder's balance by scheme."""
    incentives = report.get("incentives", {})
    if not incentives:
        return []
    out = []
    for key, d in incentives.items():
        out += [
            "",
            f"Incentive awards: {key} {d['address']}, budget per round {_credits(d.get('budget_per_round', 0))} MMC",
            _table(
                ["round", "scheme", "recipients", "minted MMC", "penalized", "burned MMC"],
                [
                    [
                        aw["round"],
                        aw["scheme"],
                        aw["recipients"],
                        _credits(aw["total"]),
                        len(aw["penalties"]),
                        _credits(sum(p["burned"] for p in aw["penalties"].values())),
                    ]
                    for aw in d["awards"]
                ],
            ),
        ]
    holders = sorted(
        {a for d in incentives.values() for a, v in d["balances"].items() if v},
        key=lambda a: int(a, 16),
    )
    out += [
        "",
        "Incentive credits by scheme (MMC)",
        _table(
            ["account", "peer id", *(scheme_label(key) for key in incentives)],
            [
                [
                    a,
                    _short(peers.get(a), 14),
                    *(_credits(d["balances"].get(a, 0)) for d in incentives.values()),
                ]
                for a in holders
            ],
        ),
    ]
    return out
