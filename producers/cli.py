"""The `tierline` command line: worker, demo, submit, models, stats, batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from producers.batch.command import batch_cli
from producers.client import submit
from producers.services import WorkerSpec, redis_url, worker_command
from worker.errors import CatalogError

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
cli.add_typer(batch_cli, name="batch")


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 2,
    pool: Annotated[str, typer.Option(help="prefork, gevent, threads, solo")] = "prefork",
) -> None:
    """Run a worker; starts a private Redis first when no REDIS_URL is set."""
    _check_catalog()
    with redis_url() as (url, private):
        if private:
            console.print(f"private Redis at [bold]{url}[/] (set REDIS_URL={url} for producers)")
        env = dict(os.environ, REDIS_URL=url, TIERLINE_CONCURRENCY=str(concurrency))
        command = worker_command(WorkerSpec(concurrency=concurrency, pool=pool, loglevel="INFO"))
        try:
            subprocess.run(command, env=env, check=False)
        except KeyboardInterrupt:
            pass


@cli.command()
def demo(
    jobs: Annotated[int, typer.Option(help="conversations to route")] = 200,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 2,
    seed: int = 7,
) -> None:
    """Route a sample of conversations through a real worker, with an outage of the small tier."""
    from producers.demo import run_demo

    raise typer.Exit(run_demo(jobs=jobs, concurrency=concurrency, seed=seed, console=console))


@cli.command("submit")
def submit_command(
    text: Annotated[Optional[str], typer.Argument(help="the user message")] = None,  # noqa: UP045
    file: Annotated[Optional[Path], typer.Option(help="a JSON job or list of messages")] = None,  # noqa: UP045
    system: Optional[str] = None,  # noqa: UP045
    critical: bool = False,
    pin_model: Optional[str] = None,  # noqa: UP045
    min_tier: Optional[str] = None,  # noqa: UP045
    policy: Optional[str] = None,  # noqa: UP045
    wait: bool = True,
    timeout: float = 120.0,
) -> None:
    """Submit one job (needs REDIS_URL and a running worker); print its JobResult."""
    options, messages = _job_from(text, file, system)
    for key, value in (("critical", critical), ("pin_model", pin_model),
                       ("min_tier", min_tier), ("policy", policy)):
        if value:
            options[key] = value
    handle = submit(messages, **options)
    if not wait:
        console.print(handle.id)
        return
    result = handle.result(timeout=timeout)
    sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    raise typer.Exit(0 if result.ok else 1)


def _job_from(text: str | None, file: Path | None, system: str | None) -> tuple[dict, list]:  # type: ignore[type-arg]
    if file is not None:
        data = json.loads(file.read_text())
        if isinstance(data, list):
            return {}, data
        return {k: v for k, v in data.items() if k != "messages"}, data.get("messages", [])
    if text is None:
        raise typer.BadParameter("give a message, or --file")
    messages = [{"role": "system", "content": system}] if system else []
    return {}, [*messages, {"role": "user", "content": text}]


@cli.command()
def models() -> None:
    """The catalog as the worker sees it: provider, thresholds, prices, busy flags."""
    from producers.inspect import models_table

    console.print(models_table())


@cli.command()
def stats() -> None:
    """Counters the workers flushed to Redis (attempts, failures, escalations)."""
    from producers.inspect import stats_table

    console.print(stats_table())


def _check_catalog() -> None:
    from worker.catalog import load_catalog
    from worker.settings import get_settings

    try:
        load_catalog(get_settings().catalog_path)
    except CatalogError as exc:
        console.print(f"[red]invalid tier catalog:[/] {exc}")
        raise typer.Exit(2) from exc


def main() -> None:
    cli()

