"""Plots as small, dependency-free SVG files: credits over rounds (one chart per scheme) and
credits against Shapley values (all schemes on one chart)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from .report import SchemeSummary, shapley_reference
from .simulate import CREDIT_UNIT, SimulationResult

__all__ = ["credits_over_rounds_svg", "credit_vs_shapley_svg", "write_plots"]

_W, _H, _L, _R, _T, _B = 720, 420, 70, 170, 40, 50
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_DASH = {"honest": "", "free-rider": "6,4", "poisoner": "2,3"}


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = (hi - lo) / count if hi > lo else 1.0
    return [lo + i * step for i in range(count + 1)]


def _frame(
    title: str, xlabel: str, ylabel: str, xr: tuple[float, float], yr: tuple[float, float]
) -> list[str]:
    x, y = _scale(*xr, _L, _W - _R), _scale(*yr, _H - _B, _T)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2:.0f}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{_L}" y1="{_H - _B}" x2="{_W - _R}" y2="{_H - _B}" stroke="black"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" stroke="black"/>',
        f'<text x="{(_L + _W - _R) / 2:.0f}" y="{_H - 12}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="16" y="{(_T + _H - _B) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(_T + _H - _B) / 2:.0f})">{escape(ylabel)}</text>',
    ]
    for v in _ticks(*xr):
        out.append(f'<text x="{x(v):.1f}" y="{_H - _B + 15}" text-anchor="middle">{v:.3g}</text>')
    for v in _ticks(*yr):
        out.append(f'<text x="{_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
        out.append(
            f'<line x1="{_L}" y1="{y(v):.1f}" x2="{_W - _R}" y2="{y(v):.1f}" stroke="#eee"/>'
        )
    return out


def credits_over_rounds_svg(result: SimulationResult, scheme: str) -> str:
    """Cumulative credits (MMC) of each hospital after each round; free-riders dashed,
    poisoners dotted."""
    rounds = [0] + [r.round for r in result.rounds]
    series: dict[str, list[float]] = {}
    for h in result.hospitals:
        total, points = 0, [0.0]
        for r in result.rounds:
            total += r.credits.get(scheme, {}).get(h["name"], 0) - r.burned.get(scheme, {}).get(
                h["name"], 0
            )
            points.append(total / CREDIT_UNIT)
        series[h["name"]] = points
    top = max((max(p) for p in series.values()), default=1.0) or 1.0
    out = _frame(
        f"credits over rounds: {scheme}",
        "round",
        "cumulative credits (MMC)",
        (0, max(rounds)),
        (0, top),
    )
    x, y = _scale(0, max(rounds) or 1, _L, _W - _R), _scale(0, top, _H - _B, _T)
    for i, h in enumerate(result.hospitals):
        color, dash = _PALETTE[i % len(_PALETTE)], _DASH[h["role"]]
        pts = " ".join(
            f"{x(r):.1f},{y(v):.1f}" for r, v in zip(rounds, series[h["name"]], strict=False)
        )
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        ly = _T + 14 * i
        out.append(
            f'<line x1="{_W - _R + 10}" y1="{ly}" x2="{_W - _R + 30}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
        )
        out.append(
            f'<text x="{_W - _R + 34}" y="{ly + 4}">{escape(h["name"])} ({escape(h["role"])})</text>'
        )
    return "\n".join(out + ["</svg>"]) + "\n"


def credit_vs_shapley_svg(result: SimulationResult, summaries: list[SchemeSummary]) -> str:
    """Each hospital's share of credits against its Shapley value, one colour per scheme."""
    shapley, kind = shapley_reference(result)
    xs = list(shapley.values()) or [0.0]
    lo, hi = min(xs + [0.0]), max(xs + [0.0])
    xr = (0.0 if -lo < 1e-6 * max(hi, 1e-12) else lo, hi or 1.0)  # float dust below zero is zero
    top = max((r.share for s in summaries for r in s.rows), default=1.0) or 1.0
    out = _frame(
        "credit share against Shapley value",
        f"Shapley value ({kind})",
        "share of the scheme's credits",
        xr,
        (0, top),
    )
    x, y = _scale(*xr, _L, _W - _R), _scale(0, top, _H - _B, _T)
    for i, s in enumerate(summaries):
        color = _PALETTE[i % len(_PALETTE)]
        for r in s.rows:
            out.append(
                f'<circle cx="{x(r.shapley):.1f}" cy="{y(r.share):.1f}" r="4" fill="{color}" '
                f'fill-opacity="0.75"><title>{escape(s.scheme)} {escape(r.hospital)}: {r.share:.1%}</title></circle>'
            )
        ly = _T + 14 * i
        out.append(f'<circle cx="{_W - _R + 20}" cy="{ly}" r="4" fill="{color}"/>')
        out.append(f'<text x="{_W - _R + 30}" y="{ly + 4}">{escape(s.scheme)}</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


def write_plots(
    result: SimulationResult, summaries: list[SchemeSummary], directory: Path
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in summaries:
        p = directory / f"credits-over-rounds-{s.scheme}.svg"
        p.write_text(credits_over_rounds_svg(result, s.scheme), encoding="utf-8")
        paths.append(p)
    p = directory / "credit-vs-shapley.svg"
    p.write_text(credit_vs_shapley_svg(result, summaries), encoding="utf-8")
    return paths + [p]
