"""`tierline replay` and `tierline worksheet`: their options. Light to import: the work
(and the worker-side modules it needs) is imported when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()


def replay(
    trace: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="CSV of token counts or batch JSONL (default: the shipped Azure 2023 trace)")] = None,
    scenario: Annotated[Optional[Path], typer.Option(help="scenario TOML")] = None,  # noqa: UP045
    policy: Annotated[Optional[str], typer.Option(help="tokens, cascade")] = None,  # noqa: UP045
    compare: Annotated[Optional[str], typer.Option(help="policies side by side: tokens,cascade")] = None,  # noqa: UP045
    sweep: Annotated[Optional[str], typer.Option(help="TIER=START:STOP[:STEP], e.g. small=2000:6000:500")] = None,  # noqa: UP045
    bar: Annotated[float, typer.Option(help="first-pass rate a sweep step must meet")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    html: Annotated[Optional[Path], typer.Option(help="write the picture (HTML, inline SVG)")] = None,  # noqa: UP045
    through_workers: Annotated[bool, typer.Option(
        help="also submit a sample to real workers on the simulated provider")] = False,
    sample: Annotated[int, typer.Option(help="requests sent with --through-workers")] = 200,
    speedup: Annotated[float, typer.Option(help="pace of --through-workers against the trace")] = 120.0,
    stored: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="replay the jobs stored in the result backend that finished in this window (2h, 1d)")] = None,
) -> None:
    """Replay a workload through tierline's routing: tier share, cost, latency, failures."""
    _need_worker_side("replay")
    from operators.replay.session import Options, run_replay

    options = Options(trace=trace, scenario=scenario, policy=policy, compare=compare, sweep=sweep, bar=bar,
                      as_json=as_json, html=html, through_workers=through_workers, sample=sample,
                      speedup=speedup, stored=stored)
    raise typer.Exit(run_replay(options, console))


def worksheet(
    trace: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="the workload the numbers come from (default: the shipped trace)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="the worksheet file (Markdown)")] = Path(
        "routing-worksheet.md"),
    scenario: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="scenario TOML (prices, catalog, quality)")] = None,
    review: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="record a review of these categories (comma-separated, or all)")] = None,
) -> None:
    """Write or refresh the routing worksheet; flag rows changed since their last review."""
    _need_worker_side("worksheet")
    from operators.replay.session import run_worksheet

    raise typer.Exit(run_worksheet(trace, out, scenario, review, console))


def _need_worker_side(command: str) -> None:
    from operators.cli import missing_worker_dependencies

    missing = missing_worker_dependencies()
    if missing:
        console.print(f"[red]`tierline {command}` runs the worker side[/], which this install lacks "
                      f"({', '.join(missing)}): install it with [bold]pip install \"tierline\\[worker]\"[/]")
        raise typer.Exit(2)
