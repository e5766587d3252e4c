"""The report as one HTML page with inline SVG charts (no network, no scripts)."""

from __future__ import annotations

import json
import time
from html import escape

from operators.charts import Window, stacked_area, value_bars
from operators.report import Report, TimePoint

_STYLE = "body{font-family:sans-serif;margin:24px;max-width:780px}td,th{padding:2px 10px;text-align:right}" \
         "td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:8px;overflow:auto}"
TIER_ORDER = ("small", "medium", "large")


def tier_shares(report: Report) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds from the window's start of each bucket, and jobs served per tier (and failed)."""
    points = report.timeline
    tiers = sorted({t for p in points for t in p.served},
                   key=lambda t: (TIER_ORDER.index(t) if t in TIER_ORDER else len(TIER_ORDER), t))
    start = points[0].start if points else 0.0
    xs = [p.start - start for p in points]
    stacks = {t: [float(p.served.get(t, 0)) for p in points] for t in tiers}
    stacks["failed"] = [float(p.failed) for p in points]
    return xs, stacks


def busy_windows(points: list[TimePoint]) -> list[Window]:
    """Runs of buckets in which models were flagged busy, labelled with the models."""
    if not points:
        return []
    start, windows, current = points[0].start, [], None
    for point in points:
        models = ", ".join(point.busy_models)
        if models and current is not None and current[2] == models:
            current = (current[0], point.start + point.width_s - start, models)
            continue
        if current is not None:
            windows.append(Window(*current))
        current = (point.start - start, point.start + point.width_s - start, models) if models else None
    if current is not None:
        windows.append(Window(*current))
    return [Window(w.start, w.end, f"{w.label} busy") for w in windows]


def render_html(report: Report) -> str:
    """The page: tier share over time, cost against all-large, p95 per model, the numbers."""
    xs, stacks = tier_shares(report)
    charts = [
        stacked_area(xs, stacks, title="tier share over time (shaded: a model flagged busy)",
                     x_label="seconds from the window's start", windows=busy_windows(report.timeline)),
        value_bars([("routed", report.cost_usd, f"${report.cost_usd:.4f}"),
                    ("all on the large tier", report.all_large_cost_usd, f"${report.all_large_cost_usd:.4f}")],
                   title="cost, USD"),
        value_bars([(m, lat.p95_ms or 0.0, f"{lat.p95_ms or 0:.0f} ms") for m, lat in report.latency_by_model.items()],
                   title="p95 latency per model"),
    ]
    if report.busy_seconds_by_model:
        charts.append(value_bars([(m, s, f"{s:.0f} s") for m, s in report.busy_seconds_by_model.items()],
                                 title="busy time per model"))
    rows = "".join(f"<tr><td>{escape(t)}</td><td>{n}</td><td>{report.tier_share.get(t, 0):.0%}</td></tr>"
                   for t, n in report.served_by_tier.items())
    saved = f"{report.saved_fraction:.0%}" if report.saved_fraction is not None else "–"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.start)) if report.start else "no jobs"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tierline report</title><style>{_STYLE}</style></head>
<body>
<h1>tierline report</h1>
<p>From {when}: {report.jobs} jobs ({report.failed} failed), {report.jobs_fell_back} fell back,
{report.escalations} escalations; cost ${report.cost_usd:.4f} against ${report.all_large_cost_usd:.4f} all on
the large tier ({saved} saved).</p>
<table><tr><th>tier</th><th>jobs</th><th>share</th></tr>{rows}</table>
{"".join(f"<div>{c}</div>" for c in charts)}
<details><summary>the report as JSON</summary><pre>{escape(json.dumps(report.to_json(), indent=1))}</pre></details>
</body></html>
"""
