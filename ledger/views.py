"""What ``medmesh audit`` shows: table views of an audit report (identities, rounds, one round,
credits, one peer), model-file verification, and the HTML transparency report.

Each view is a list of flat rows (dicts), rendered as an aligned table, JSON or CSV.
``parameters_hash`` is the node's aggregate hash, re-implemented here because the ledger does
not import the node: ``sha256(b"medmesh/params/v1" + float32 little-endian bytes)``.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LedgerError

__all__ = [
    "PARAMS_DOMAIN",
    "identity_rows",
    "parameters_hash",
    "peer_view",
    "read_model_file",
    "render",
    "round_rows",
    "round_view",
    "credit_rows",
    "award_rows",
    "scheme_label",
    "verify_model",
    "write_html_report",
]

#: Domain prefix of the aggregate hash (node.consensus.update.parameters_hash).
PARAMS_DOMAIN = b"medmesh/params/v1"


def parameters_hash(params: np.ndarray) -> bytes:
    """SHA-256 of ``PARAMS_DOMAIN`` + the vector's float32 little-endian bytes."""
    return hashlib.sha256(
        PARAMS_DOMAIN + np.ascontiguousarray(params, dtype="<f4").tobytes()
    ).digest()


def read_model_file(path: Path | str) -> np.ndarray:
    """A flat float32 parameter vector from a ``.npy`` file or raw little-endian ``.f32`` bytes."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            raw = path.read_bytes()
            if len(raw) % 4:
                raise LedgerError(
                    f"{path}: {len(raw)} bytes is not a whole number of float32 values"
                )
            array = np.frombuffer(raw, dtype="<f4")
    except OSError as exc:
        raise LedgerError(f"cannot read model file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise LedgerError(f"{path} is not a .npy array: {exc}") from exc
    if array.dtype.kind != "f":
        raise LedgerError(f"{path}: expected float parameters, found dtype {array.dtype}")
    return np.asarray(array, dtype="<f4").reshape(-1)


def verify_model(report: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """Which finalized round produced the model in ``path``: its contributors and attesters,
    or ``round: None`` if no finalized round has its hash."""
    digest = "0x" + parameters_hash(read_model_file(path)).hex()
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    for r in report["rounds"]:
        if r["finalized"] and r["aggregate_hash"] == digest:
            return {
                "file": str(path),
                "hash": digest,
                "round": r["round"],
                "contributors": [{"account": a, "peer_id": peers.get(a)} for a in r["accepted"]],
                "attesters": [
                    {
                        "account": x["account"],
                        "peer_id": peers.get(x["account"]),
                        "agrees": x["agrees"],
                    }
                    for x in r["attestations"]
                ],
                "finalizer": r["finalizer"],
            }
    return {"file": str(path), "hash": digest, "round": None, "contributors": [], "attesters": []}


# --------------------------------------------------------------------------- table views


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


# --------------------------------------------------------------------------- HTML report

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _line_chart(series: dict[str, list[tuple[float, float]]], title: str, ylabel: str) -> str:
    """An inline SVG line chart (one line per series, x = round)."""
    width, height, left, bottom, top, right = 660, 300, 60, 40, 30, 190
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<p>{html.escape(title)}: no data.</p>"
    xmax = max(x for x, _ in points) or 1
    xmin = min(x for x, _ in points)
    ymax = max(y for _, y in points) or 1.0
    sx = lambda x: left + (x - xmin) / max(xmax - xmin, 1) * (width - left - right)  # noqa: E731
    sy = lambda y: height - bottom - y / ymax * (height - top - bottom)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">round</text>',
        f'<text x="14" y="{(top + height - bottom) / 2}" transform="rotate(-90 14 {(top + height - bottom) / 2})" text-anchor="middle">{html.escape(ylabel)}</text>',
    ]
    for i in range(5):
        y = ymax * i / 4
        parts.append(
            f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{y:.3g}</text>'
        )
    rounds = sorted({int(x) for x, _ in points})
    for tick in rounds[:: max(1, len(rounds) // 10)]:
        parts.append(
            f'<text x="{sx(tick):.1f}" y="{height - bottom + 15}" text-anchor="middle" font-size="11">{tick}</text>'
        )
    for n, (name, pts) in enumerate(series.items()):
        color = _COLORS[n % len(_COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>')
        ly = top + 16 * n
        parts.append(
            f'<rect x="{width - right + 10}" y="{ly}" width="10" height="10" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{width - right + 24}" y="{ly + 9}" font-size="11">{html.escape(name[:28])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bar_chart(values: dict[str, float], title: str) -> str:
    width, bar, left = 640, 22, 190
    if not values:
        return f"<p>{html.escape(title)}: none.</p>"
    vmax = max(values.values()) or 1.0
    height = 30 + bar * len(values) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
    ]
    for n, (name, value) in enumerate(values.items()):
        y = 30 + n * bar
        w = value / vmax * (width - left - 80)
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="11">{html.escape(name[:28])}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar - 6}" fill="{_COLORS[n % len(_COLORS)]}"/>'
        )
        parts.append(
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="11">{value:,.2f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row.values())
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def write_html_report(report: dict[str, Any], out_dir: Path | str) -> Path:
    """Write ``index.html`` (self-contained: inline CSS and SVG, no scripts, no network) and
    ``audit.json`` to ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peers: dict[str, str] = {
        i["account"]: i["peer_id"] or i["account"] for i in report["identities"]
    }

    def label(account: str) -> str:
        return f"{peers.get(account, account)[:14]}.. ({account[:8]})"

    epsilon = {
        label(a): [(p["round"], p["epsilon"]) for p in pts] for a, pts in report["epsilon"].items()
    }
    cumulative_credit: dict[str, list[tuple[float, float]]] = {}
    running: dict[str, int] = {}
    for r in report["rounds"]:
        for a, v in r["credited"].items():
            running[a] = running.get(a, 0) + v
        for a, v in r["slashed"].items():
            running[a] = running.get(a, 0) - v
        for a, total in running.items():
            cumulative_credit.setdefault(label(a), []).append((r["round"], total / 10**18))
    rejections = [
        {
            "round": r["round"],
            "account": x["account"],
            "reporter": x["reporter"],
            "reason": x["reason_name"],
        }
        for r in report["rounds"]
        for x in r["rejections"]
    ] + [
        {
            "round": r["round"],
            "account": a,
            "reporter": "(finalized set)",
            "reason": "left out of the accepted set",
        }
        for r in report["rounds"]
        for a in r["excluded"]
    ]
    dissent = [
        {
            "round": r["round"],
            "account": x["account"],
            "aggregate": x["aggregate_hash"],
            "late": x["late"],
        }
        for r in report["rounds"]
        for x in r["attestations"]
        if x["agrees"] is False
    ]
    failed = [c for c in report["checks"] if not c["ok"]]
    chain = report["chain"]
    settings = report.get("settings", {})
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>medmesh transparency report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; font-family: monospace; }}
th {{ background: #f0f0f0; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
.ok {{ color: #2a7d2a; }} .fail {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>medmesh transparency report</h1>
<p>Chain {chain["chain_id"]} ({html.escape(str(chain["rpc"]))}), head block {chain["head_block"]}.
Contracts: {", ".join(f"{html.escape(k)} <code>{v}</code>" for k, v in chain["contracts"].items())}.</p>
<p>Settings: <code>{html.escape(json.dumps(settings))}</code></p>
<p class="{"ok" if report["ok"] else "fail"}">Independent checks: {len(report["checks"]) - len(failed)}/{len(report["checks"])} passed.</p>
{_html_table([{"check": c["check"], "detail": c["detail"]} for c in failed]) if failed else ""}
<h2>Participants</h2>
{_html_table(identity_rows(report))}
<h2>Rounds</h2>
{_html_table(round_rows(report))}
<h2>Privacy: epsilon spent per hospital</h2>
<p>The epsilon each hospital committed with its update, round by round (its accountant's running total).</p>
{_line_chart(epsilon, "epsilon spent per hospital", "epsilon")}
<h2>Accepted and rejected updates</h2>
{_bar_chart({label(a): float(sum(1 for r in report["rounds"] if a in r["accepted"])) for a in peers}, "accepted updates per hospital")}
<h3>Rejections</h3>
{_html_table(rejections)}
<h3>Dissenting attestations</h3>
{_html_table(dissent)}
<h2>Monitoring alerts recorded on chain</h2>
<p>Alerts a hospital's local monitoring raised and signed on chain (<code>AlertRecorded</code>): the
kind, the round and the hash of the alert's JSON body, which the hospital keeps and can show.</p>
{_html_table(alert_rows(report))}
<h2>Credits</h2>
{_line_chart(cumulative_credit, "credits held over time", "MMC")}
{_html_table(credit_rows(report))}
<p>Total supply {report["total_supply"] / 10**18:,.6f} MMC. The full audit data is in <a href="audit.json">audit.json</a>.</p>
{"<h2>Incentive awards</h2>" + _html_table(award_rows(report)) if report.get("incentives") else ""}
</body></html>
"""
    (out / "audit.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    path = out / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path
