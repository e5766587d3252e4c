"""The client's commands: `tierline submit`, `tierline batch run` and `tierline extract`.

The whole `tierline` command (`operators.cli`) adds the worker-side ones to these.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from producers.batch.command import batch_cli
from producers.client import submit
from producers.documents.command import extract_command

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Submit jobs to tierline workers.")
console = Console()
cli.add_typer(batch_cli, name="batch")
cli.command("extract")(extract_command)


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


def main() -> None:
    cli()

