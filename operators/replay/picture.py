"""The replay as a picture: one self-contained HTML page with inline SVG (no network)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from operators import charts

Summary = dict[str, Any]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:780px}
h1{font-size:20px;margin:0 0 4px}.lead{font-size:15px;margin:4px 0 18px;color:#333}
.lead b{color:#1a6e1a}section{margin:18px 0}table{border-collapse:collapse;font-size:12px}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
.note{font-size:11px;color:#666}
"""


def page(runs: Sequence[tuple[str, Summary]], extra: dict[str, Any], *, title: str) -> str:
    """The HTML page for `runs` (name, summary) and the extras (sweep, outages)."""
    parts = [f"<h1>{escape(title)}</h1>", _lead(runs)]
    parts.append(_section(charts.stacked_bars(
        [(name, s["tier_share"]) for name, s in runs], list(runs[0][1]["tier_share"]),
        title="Which tier answered")))
    parts.append(_section(charts.value_bars(
        [(name, s["cost_vs_all_large"] or 0.0,
          f"{(s['cost_vs_all_large'] or 0):.1%} (${s['cost_usd']:,.2f} of ${s['all_large_usd']:,.2f})")
         for name, s in runs], title="Cost against sending everything to the large tier", maximum=1.0)))
    parts.append(_section(charts.value_bars(
        [(f"{name} p50", s["latency_p50_ms"], f"{s['latency_p50_ms']:,.0f} ms") for name, s in runs]
        + [(f"{name} p95", s["latency_p95_ms"], f"{s['latency_p95_ms']:,.0f} ms") for name, s in runs],
        title="Latency, escalations included", color=charts.PALETTE[4])))
    parts.append(_section(_timeline(runs[0], extra.get("outages", []))))
    if "sweep" in extra:
        parts.append(_section(_sweep(extra["sweep"])))
    parts.append(_section(_table(runs)))
    parts += [_section(_categories(name, s)) for name, s in runs if s.get("categories")]
    body = "".join(parts)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def write_picture(path: Path, runs: Sequence[tuple[str, Summary]], extra: dict[str, Any], *, title: str) -> None:
    """Write the page to `path`."""
    path.write_text(page(runs, extra, title=title), encoding="utf-8")


def _section(svg: str) -> str:
    return f"<section>{svg}</section>"


def _lead(runs: Sequence[tuple[str, Summary]]) -> str:
    items = []
    for name, s in runs:
        ratio = s["cost_vs_all_large"]
        saved = f"costs <b>{ratio:.0%}</b> of all-large (saves {1 - ratio:.0%})" if ratio is not None else "costs –"
        items.append(f"<li><b>{escape(name)}</b>: {saved}; {s['first_pass_rate']:.1%} of first answers pass; "
                     f"p95 {s['latency_p95_ms']:,.0f} ms; {s['user_visible_failures']:,} user-visible failures</li>")
    return f"<p class='lead'>{runs[0][1]['requests']:,} requests replayed.</p><ul class='lead'>{''.join(items)}</ul>"


def _timeline(run: tuple[str, Summary], outages: Sequence[dict[str, Any]]) -> str:
    name, s = run
    rows = s["timeline"]["rows"]
    tiers = list(s["tier_share"])
    xs = [(r["start_s"] + s["timeline"]["width_s"] / 2) / 60 for r in rows]
    stacks = {t: [float(r[t]) for r in rows] for t in tiers}
    if any(r["failed"] for r in rows):
        stacks["failed"] = [float(r["failed"]) for r in rows]
    windows = [charts.Window(o["start_s"] / 60, o["end_s"] / 60, f"{o['model']} {o['error']}") for o in outages]
    return charts.stacked_area(xs, stacks, title=f"Tier share over the trace ({name})",
                               x_label="minutes from the first request", windows=windows,
                               colors=(*charts.PALETTE[:len(tiers)], "#d62728"))


def _sweep(data: dict[str, Any]) -> str:
    steps = data["steps"]
    xs = [float(s["max_tokens"]) for s in steps]
    best = data["cheapest"]
    marks = {float(best): "cheapest meeting the bar"} if best is not None else {}
    x_label = f"{data['tier']} max_tokens"
    cost = charts.lines(xs, {"cost vs all-large": [s["cost_vs_all_large"] or 0.0 for s in steps]},
                        title=f"Sweep of the {data['tier']} threshold ({data['policy']}): cost",
                        marks=marks, x_label=x_label, height=200, y_format="{:.1%}")
    passing = charts.lines(xs, {"first answers that pass": [s["first_pass_rate"] for s in steps]},
                           title="... and first answers that pass the quality gate", marks=marks,
                           hline=(data["bar"], f"bar {data['bar']:.1%}"), x_label=x_label, height=200,
                           y_format="{:.1%}", colors=charts.PALETTE[1:])
    return cost + passing


def _table(runs: Sequence[tuple[str, Summary]]) -> str:
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("requests", lambda s: f"{s['requests']:,}"),
        ("cost", lambda s: f"${s['cost_usd']:,.4f}"),
        ("escalations", lambda s: f"{s['escalations']:,}"),
        ("failed calls", lambda s: f"{s['failed_calls']:,}"),
        ("jobs that fell back", lambda s: f"{s['jobs_with_fallback']:,}"),
        ("user-visible failures", lambda s: f"{s['user_visible_failures']:,}"),
    ]
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in runs)
    body = "".join(f"<tr><td>{label}</td>" + "".join(f"<td>{cell(s)}</td>" for _, s in runs) + "</tr>"
                   for label, cell in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _categories(name: str, summary: Summary) -> str:
    """Per category: traffic, tiers, first-pass rate, fallbacks, failures, cost vs all-large."""
    tiers = list(summary["tier_share"])
    head = "".join(f"<th>{escape(h)}</th>" for h in ("category", "traffic", *tiers, "first pass",
                                                      "escalations", "fell back", "failures", "vs all-large"))
    total = max(1, summary["requests"])
    rows = []
    for category, s in summary["categories"].items():
        ratio = s["cost_vs_all_large"]
        cells = [escape(category), f"{s['requests'] / total:.1%}", *(f"{s['tier_share'][t]:.1%}" for t in tiers),
                 f"{s['first_pass_rate']:.1%}", f"{s['escalations']:,}", f"{s['jobs_with_fallback']:,}",
                 f"{s['user_visible_failures']:,}", "–" if ratio is None else f"{ratio:.1%}"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<p><b>Per category ({escape(name)})</b></p><table><tr>{head}</tr>{''.join(rows)}</table>"
