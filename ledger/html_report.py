"""The audit's HTML transparency report (``medmesh audit report --out DIR``): one
self-contained page (inline CSS and SVG charts, no scripts, no network) built from the table
views of :mod:`ledger.views`, written next to the report's JSON."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .views import alert_rows, award_rows, credit_rows, identity_rows, round_rows

__all__ = ["write_html_report"]

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
