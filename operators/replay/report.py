"""The replay's report on the terminal: one column per run (a policy, a sweep step, a
prediction beside a measurement), rows a team lead can act on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Group as RichGroup
from rich.table import Table

Summary = dict[str, Any]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _share_of(tier: str) -> Callable[[Summary], str]:
    return lambda s: _pct(s["tier_share"].get(tier))


def _rows(tiers: Sequence[str]) -> list[tuple[str, Callable[[Summary], str]]]:
    rows: list[tuple[str, Callable[[Summary], str]]] = [("requests", lambda s: f"{s['requests']:,}")]
    rows += [(f"served by {tier}", _share_of(tier)) for tier in tiers]
    rows += [
        ("cost", lambda s: f"${s['cost_usd']:,.4f}"),
        ("same answers, all on the large tier", lambda s: f"${s['all_large_usd']:,.4f}"),
        ("cost vs all-large", lambda s: _pct(s["cost_vs_all_large"])),
        ("latency p50 / p95 (incl. escalations)",
         lambda s: f"{s['latency_p50_ms']:,.0f} / {s['latency_p95_ms']:,.0f} ms"),
        ("first answers that passed", lambda s: _pct(s["first_pass_rate"])),
        ("escalations (quality gate)", lambda s: f"{s['escalations']:,}"),
        ("failed calls / jobs that fell back",
         lambda s: f"{s['failed_calls']:,} / {s['jobs_with_fallback']:,}"),
        ("user-visible failures", lambda s: f"{s['user_visible_failures']:,}" + _reasons(s)),
    ]
    return rows


def _reasons(s: Summary) -> str:
    failures = s.get("failures") or {}
    return f" {failures}" if failures else ""


def runs_table(runs: Sequence[tuple[str, Summary]], *, title: str) -> Table:
    """A table with one column per named run summary."""
    tiers = list(runs[0][1]["tier_share"]) if runs else []
    table = Table(title=title)
    table.add_column("measure")
    for name, _ in runs:
        table.add_column(name, justify="right")
    for label, cell in _rows(tiers):
        table.add_row(label, *(cell(s) for _, s in runs))
    return table


def categories_table(summary: Summary) -> Table | None:
    """Per category: share of traffic, tiers, first-pass rate, failures, cost vs all-large."""
    categories: dict[str, Summary] = summary.get("categories") or {}
    if not categories:
        return None
    tiers = list(summary["tier_share"])
    table = Table(title="per category")
    for column in ("category", "traffic", *tiers, "first pass", "escalations", "fallbacks",
                   "failures", "p95", "cost vs all-large"):
        table.add_column(column, justify="left" if column == "category" else "right")
    total = max(1, summary["requests"])
    for name, s in categories.items():
        table.add_row(
            name, _pct(s["requests"] / total), *(_pct(s["tier_share"][t]) for t in tiers),
            _pct(s["first_pass_rate"]), f"{s['escalations']:,}", f"{s['jobs_with_fallback']:,}",
            f"{s['user_visible_failures']:,}", f"{s['latency_p95_ms']:,.0f} ms", _pct(s["cost_vs_all_large"]),
        )
    return table


def sweep_table(tier: str, steps: Sequence[tuple[int, Summary]], *, bar: float, best: int | None) -> Table:
    """One row per threshold tried; the cheapest that meets the first-pass `bar` marked."""
    table = Table(title=f"sweep of the {tier} threshold (bar: first-pass rate ≥ {bar:.1%})")
    for column in ("threshold", f"{tier} share", "cost vs all-large", "first pass", "p95", "failures", ""):
        table.add_column(column, justify="right")
    for value, s in steps:
        mark = "← cheapest" if value == best else ""
        table.add_row(f"{value:,}", _pct(s["tier_share"].get(tier)), _pct(s["cost_vs_all_large"]),
                      _pct(s["first_pass_rate"]), f"{s['latency_p95_ms']:,.0f} ms",
                      f"{s['user_visible_failures']:,}", mark)
    return table


def report(runs: Sequence[tuple[str, Summary]], *, title: str) -> RichGroup:
    """The whole terminal report: the runs side by side, then the first run's categories."""
    parts: list[Table] = [runs_table(runs, title=title)]
    for name, summary in runs:
        table = categories_table(summary)
        if table is not None:
            table.title = f"per category ({name})"
            parts.append(table)
    return RichGroup(*parts)
