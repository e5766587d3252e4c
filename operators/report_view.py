"""The report as rich tables for a terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator

from rich.console import Group
from rich.table import Table

from operators.report import Latency, Report


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def _window(report: Report) -> str:
    if report.start is None or report.end is None:
        return f"last {report.since_s:g}s: no jobs"
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"{time.strftime(fmt, time.localtime(report.start))} – {time.strftime(fmt, time.localtime(report.end))}"


def summary(report: Report) -> Table:
    """The headline numbers: the same measures as the demo's table."""
    table = _table(f"tierline report: {_window(report)}", "measure", "value")
    table.add_row("jobs", f"{report.jobs} ({report.succeeded} succeeded, {report.failed} failed)")
    for tier, count in report.served_by_tier.items():
        table.add_row(f"served by {tier}", f"{count} ({report.tier_share.get(tier, 0):.0%})")
    table.add_row("jobs that fell back (provider failure)", str(report.jobs_fell_back))
    table.add_row("failed provider attempts", str(report.failed_provider_attempts))
    table.add_row("escalations (quality gate)", str(report.escalations))
    codes = ", ".join(f"{c}: {n}" for c, n in report.failures_by_code.items())
    table.add_row("failures", f"{report.failed}" + (f" ({codes})" if codes else ""))
    table.add_row("redeliveries", str(report.redeliveries))
    saved = f" ({report.saved_fraction:.0%} saved)" if report.saved_fraction is not None else ""
    table.add_row("total cost", f"${report.cost_usd:.4f}")
    table.add_row("same tokens, all on the large tier", f"${report.all_large_cost_usd:.4f}{saved}")
    return table


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def latencies(report: Report) -> Table:
    table = _table("latency (from histograms, ±10 %)", "tier / model", "jobs", "p50", "p95", "p99")
    rows: list[tuple[str, Latency]] = [("all jobs", report.latency)]
    rows += [(f"tier {t}", lat) for t, lat in report.latency_by_tier.items()]
    rows += [(f"model {m}", lat) for m, lat in report.latency_by_model.items()]
    for name, lat in rows:
        table.add_row(name, str(lat.count), _ms(lat.p50_ms), _ms(lat.p95_ms), _ms(lat.p99_ms))
    return table


def models(report: Report) -> Table:
    table = _table("models (busiest first)", "model", "attempts", "failed", "busy time", "busy flags", "cost")
    names = sorted(set(report.attempts_by_model) | set(report.busy_seconds_by_model),
                   key=lambda m: (-report.busy_seconds_by_model.get(m, 0), m))
    for model in names:
        outcomes = report.attempts_by_model.get(model, {})
        failed = sum(n for outcome, n in outcomes.items() if outcome != "ok")
        table.add_row(model, str(sum(outcomes.values())), str(failed),
                      f"{report.busy_seconds_by_model.get(model, 0):.0f} s",
                      str(report.busy_marks_by_model.get(model, 0)), f"${report.cost_by_model.get(model, 0):.4f}")
    return table


def _extras(report: Report) -> Iterator[Table]:
    if report.escalations_by_route:
        table = _table("escalations", "route (check)", "count")
        for route, count in report.escalations_by_route.items():
            table.add_row(route, str(count))
        yield table
    if report.teams:
        table = _table("cost per team (metadata.team)", "team", "jobs", "cost")
        for team, row in report.teams.items():
            table.add_row(team, str(int(row["jobs"])), f"${row['cost_usd']:.4f}")
        yield table
    if report.budgets:
        table = _table("daily budgets (live control) against today's spend (UTC)", "team", "budget", "spent today",
                       "used", "at the limit")
        for team, b in report.budgets.items():
            table.add_row("all spend (*)" if team == "*" else team, f"${b.usd_per_day:.2f}",
                          f"${b.spent_today_usd:.4f}", f"{b.used:.0%}", b.action)
        yield table
    if report.shadow:
        table = _table("shadow against live: the same jobs", "shadow model", "jobs", "pass live", "pass shadow",
                       "shadow errors", "cost live", "cost shadow", "latency live", "latency shadow")
        for model, c in report.shadow.items():
            table.add_row(model, str(c.jobs), f"{c.live.pass_rate:.1%}", f"{c.shadow.pass_rate:.1%}",
                          str(c.shadow_errors), f"${c.live.cost_usd:.4f}", f"${c.shadow.cost_usd:.4f}",
                          _ms(c.live.mean_latency_ms), _ms(c.shadow.mean_latency_ms))
        yield table


def render(report: Report) -> Group:
    """Every table of the report, for `Console.print`."""
    return Group(summary(report), latencies(report), models(report), *_extras(report))
