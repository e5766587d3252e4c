"""What `tierline replay` and `tierline worksheet` do, once their options are read."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from operators.replay import report
from operators.replay.run import Source, file_source, replay_file, replay_source
from operators.replay.scenario import Scenario, load_scenario
from operators.replay.sweep import cheapest, parse_sweep, run_sweep
from operators.replay.workload import SHIPPED_TRACE, WorkloadError
from worker.errors import CatalogError
from worker.settings import Settings


class Options:
    """The replay command's options (see `operators.replay.command.replay`)."""

    def __init__(self, **values: Any) -> None:
        self.trace: Path | None = values["trace"]
        self.scenario: Path | None = values["scenario"]
        self.policy: str | None = values["policy"]
        self.compare: str | None = values["compare"]
        self.sweep: str | None = values["sweep"]
        self.bar: float = values["bar"]
        self.as_json: bool = values["as_json"]
        self.html: Path | None = values["html"]
        self.through_workers: bool = values["through_workers"]
        self.sample: int = values["sample"]
        self.speedup: float = values["speedup"]
        self.stored: str | None = values["stored"]


def run_replay(o: Options, console: Console) -> int:
    """Run the replay the options ask for and show it; the exit code."""
    try:
        chosen = load_scenario(o.scenario)
        name, source = _source(o.trace, o.stored)
        runs, extra = _runs(name, source, chosen, policy=o.policy, compare=o.compare, sweep=o.sweep, bar=o.bar)
        if o.through_workers:
            from operators.replay.through_workers import run_through_workers

            runs += run_through_workers(o.trace or SHIPPED_TRACE, chosen, policy=o.policy, sample=o.sample,
                                        speedup=o.speedup, console=console)
    except (WorkloadError, CatalogError) as exc:
        console.print(f"[red]replay:[/] {exc}")
        return 2
    if o.html is not None:
        from operators.replay.picture import write_picture

        write_picture(o.html, runs, extra, title=f"tierline replay: {name}")
    if o.as_json:
        sys.stdout.write(json.dumps({"runs": dict(runs), **extra}, indent=2) + "\n")
        return 0
    console.print(report.report(runs, title=f"tierline replay: {name}"))
    if "sweep" in extra:
        _print_sweep(extra["sweep"], console)
    if o.html is not None:
        console.print(f"picture: {o.html}")
    return 0


def _source(trace: Path | None, stored: str | None) -> tuple[str, Source]:
    """What to replay: a file (the shipped trace by default) or the stored results of a window."""
    if stored is None:
        path = trace or SHIPPED_TRACE
        return path.name, file_source(path)
    if trace is not None:
        raise WorkloadError("give a TRACE or --stored, not both")
    from operators.replay.stored_workload import read_stored, window_s

    since, url, now = window_s(stored), Settings().results, time.time()
    return f"stored results of the last {stored}", lambda _catalog: read_stored(url, since_s=since, now=now)


def _runs(
    name: str, source: Source, scenario: Scenario, *, policy: str | None, compare: str | None, sweep: str | None,
    bar: float,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    policies = [p.strip() for p in compare.split(",") if p.strip()] if compare else [policy or scenario.policy]
    runs = [(p, replay_source(source, name, scenario, policy=p)) for p in policies]
    extra: dict[str, Any] = {"outages": _outages(scenario, runs[0][1].get("first_at_s"))}
    if sweep is not None:
        spec = parse_sweep(sweep)
        steps = run_sweep(spec, scenario, lambda s: replay_source(source, name, s, policy=policies[0]))
        extra["sweep"] = {"tier": spec.tier, "bar": bar, "policy": policies[0],
                          "cheapest": cheapest(steps, bar=bar),
                          "steps": [{"max_tokens": v, **_brief(s)} for v, s in steps]}
    return runs, extra


def _outages(scenario: Scenario, first_s: float | None) -> list[dict[str, Any]]:
    """The scenario's outages as offsets from the first request (for the picture)."""
    if first_s is None:
        return []
    return [{"model": o.model, "error": o.error, "start_s": o.window(first_s)[0] - first_s,
             "end_s": o.window(first_s)[1] - first_s} for o in scenario.outages]


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("timeline", "categories")}


def _print_sweep(data: dict[str, Any], console: Console) -> None:
    steps = [(s["max_tokens"], s) for s in data["steps"]]
    console.print(report.sweep_table(data["tier"], steps, bar=data["bar"], best=data["cheapest"]))
    if data["cheapest"] is None:
        console.print(f"no {data['tier']} threshold tried meets the bar {data['bar']:.1%}")
    else:
        console.print(f"cheapest {data['tier']} threshold meeting the bar: [bold]{data['cheapest']:,}[/] tokens")


def run_worksheet(trace: Path | None, out: Path, scenario: Path | None, review: str | None, console: Console) -> int:
    """Write or refresh the worksheet at `out`; the exit code."""
    from operators import worksheet as sheet

    path = trace or SHIPPED_TRACE
    try:
        chosen = load_scenario(scenario)
        catalog = chosen.build_catalog()
        rows = sheet.rows_from(replay_file(path, chosen), catalog, sheet.read_state(out))
        if review:
            rows = sheet.review(rows, [n.strip() for n in review.split(",") if n.strip()])
    except (WorkloadError, CatalogError) as exc:
        console.print(f"[red]worksheet:[/] {exc}")
        return 2
    note = f"scenario {scenario.name}" if scenario else "the worker's catalog, default scenario"
    out.write_text(sheet.render(rows, source=f"`{path.name}`", catalog_note=note), encoding="utf-8")
    flagged = [r for r in rows if r.changes]
    console.print(f"worksheet: {out} ({len(rows)} rows, {len(flagged)} flagged)")
    for r in flagged:
        console.print(f"  [yellow]{r.category}[/]: {', '.join(r.changes)}")
    return 0
