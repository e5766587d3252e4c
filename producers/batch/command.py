"""`tierline batch run IN.jsonl -o OUT.jsonl`: a batch file through the workers (and the
run-to-exit-status part every file run shares: `tierline extract` too).

Exit status: 0 every line succeeded; 1 some lines failed or were bad (see the errors
file); 2 the batch was rejected before anything was sent; 3 Redis (or the result
backend) was lost mid-run; 130 interrupted. After 3 or 130, run the same command again
to resume.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import redis
import typer
from kombu.exceptions import OperationalError
from rich.console import Console
from rich.markup import escape

from producers.batch.errors import BatchRejected
from producers.batch.handle import DEFAULT_WINDOW
from producers.batch.interrupt import StopOnSigint, interrupted_by
from producers.batch.progress import BatchBar
from producers.batch.run import FileBatch, FileRun
from producers.batch.summary import BatchSummary, largest_price
from results import ResultsUnavailable

batch_cli = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Run OpenAI Batch API, Mistral batch or plain JSONL files through the workers.",
)


@batch_cli.command("run")
def run_command(
    source: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, metavar="IN.jsonl", help="the input JSONL")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output JSONL; appended to, resumed")],
    errors: Annotated[Optional[Path], typer.Option(help="errors JSONL (default: OUT.errors.jsonl)")] = None,  # noqa: UP045
    route: Annotated[bool, typer.Option(help="let tierline route lines whose body names a model")] = False,
    window: Annotated[int, typer.Option(min=1, help="most jobs in flight at once")] = DEFAULT_WINDOW,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run IN.jsonl into OUT.jsonl (needs REDIS_URL and running workers); resumable.

    Lines whose custom_id is in OUT are done: after an interruption,
    the same command finishes the rest and redoes nothing.
    """
    run_to_exit(lambda: FileBatch(source, output, errors=errors, route=route, window=window),
                progress=progress, unit="lines")


def run_to_exit(open_run: Callable[[], FileRun], *, progress: bool, unit: str) -> NoReturn:
    """Open the run `open_run` makes, run it with a bar and a summary, exit with its status.

    2: rejected before anything was sent; 3: Redis lost mid-run; else `run_into_files`'s.
    """
    console = Console()
    with ExitStack() as stack:
        try:
            batch = stack.enter_context(open_run())
        except (BatchRejected, ValueError, RuntimeError) as exc:
            console.print(f"[red]{'batch' if unit == 'lines' else 'extraction'} not run:[/] {escape(str(exc))}")
            raise typer.Exit(2) from exc
        if batch.resumed:
            console.print(f"resuming: {batch.resumed:,} records already in the output and errors files")
        try:
            code = run_into_files(batch, console, progress=progress, unit=unit)
        except (redis.RedisError, OperationalError, ResultsUnavailable) as exc:
            console.print(f"[red]lost Redis or the result backend:[/] {escape(str(exc))}; "
                          "run the same command again to resume")
            raise typer.Exit(3) from exc
    raise typer.Exit(code)


def run_into_files(batch: FileRun, console: Console, *, progress: bool, unit: str = "lines") -> int:
    """Run `batch` with a progress bar and a summary; the exit status (0, 1 or 130).

    Ctrl-C stops the run between two of its steps, a second Ctrl-C at once: 130 either way,
    whatever error a driver wrapped the second one in (`producers.batch.interrupt`).
    """
    summary = BatchSummary(large=largest_price(), unit=unit)
    with StopOnSigint() as sigint:
        interrupted = _run_with_bar(batch, summary, BatchBar(console, batch.progress, live=progress, unit=unit),
                                    stop=sigint.requested)
        sigint.stopped()
        p = batch.progress
        console.print(summary.table(p))
        if interrupted:
            console.print(
                f"[yellow]interrupted:[/] {p.done:,} of {p.total:,} {unit} done, {p.in_flight:,} in flight "
                "(they keep running on the workers); run the same command again to finish"
            )
            return 130
        console.print(f"output: {escape(str(batch.output))}  errors: {escape(str(batch.errors))}")
        return 0 if p.failed + p.invalid == 0 else 1


def _run_with_bar(batch: FileRun, summary: BatchSummary, bar: BatchBar, *, stop: Callable[[], bool]) -> bool:
    """Run `batch` to its end, or until Ctrl-C: whether it was interrupted.

    stop: the flag the run checks between its steps (see `BatchHandle.results`).
    """
    try:
        with bar:
            for outcome in batch.run(stop=stop):
                summary.add(outcome)
                bar.update()
    except BaseException as exc:
        if not interrupted_by(exc):
            raise
        return True
    return False
