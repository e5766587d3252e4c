"""`tierline extract SOURCE --schema SCHEMA.json -o OUT.jsonl`: documents through the workers.

Exit status: 0 every document succeeded; 1 some failed or could not be read (see the
errors file); 2 rejected before anything was sent (a bad schema or option, repeated
ids); 3 Redis was lost mid-run; 130 interrupted. After 3 or 130, run the same command
again to resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from producers.batch.command import run_to_exit
from producers.documents.run import DEFAULT_DOCUMENT_WINDOW, DocumentRun
from producers.documents.sources import DEFAULT_MAX_BYTES


def extract_command(
    source: Annotated[Path, typer.Argument(
        exists=True, metavar="SOURCE", help="a folder of documents (text, Markdown, HTML, PDF) or a JSONL "
        "of {\"id\", \"text\"} lines")],
    schema: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="the JSON Schema to extract")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output JSONL; appended to, resumed")],
    errors: Annotated[Optional[Path], typer.Option(help="errors JSONL (default: OUT.errors.jsonl)")] = None,  # noqa: UP045
    instructions: Annotated[Optional[str], typer.Option(help="added to the extraction prompt")] = None,  # noqa: UP045
    policy: Annotated[Optional[str], typer.Option(help="routing policy: tokens or cascade")] = None,  # noqa: UP045
    min_tier: Annotated[Optional[str], typer.Option(help="never below this tier")] = None,  # noqa: UP045
    max_output_tokens: Annotated[Optional[int], typer.Option(min=1, help="output budget per chunk")] = None,  # noqa: UP045
    provenance: Annotated[bool, typer.Option(help="say where each value came from (chunk, offsets)")] = False,
    window: Annotated[int, typer.Option(min=1, help="most documents in flight at once")] = DEFAULT_DOCUMENT_WINDOW,
    max_mb: Annotated[float, typer.Option(min=0.001, help="largest document, in MB")] = DEFAULT_MAX_BYTES / 2**20,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Extract every document of SOURCE into OUT.jsonl (needs REDIS_URL and running workers).

    Resumable: documents whose job is in OUT are done; a document whose text changed is
    extracted again.
    """
    try:
        loaded = json.loads(schema.read_text())
    except (OSError, ValueError) as exc:
        typer.echo(f"extraction not run: {schema}: not a JSON file ({exc})", err=True)
        raise typer.Exit(2) from exc
    options: dict[str, Any] = {k: v for k, v in (
        ("instructions", instructions), ("policy", policy), ("min_tier", min_tier),
        ("max_output_tokens", max_output_tokens)) if v is not None}
    if provenance:
        options["provenance"] = True
    run_to_exit(lambda: DocumentRun(source, loaded if isinstance(loaded, dict) else {"type": None}, output,
                                    errors=errors, window=window, max_bytes=int(max_mb * 2**20), **options),
                progress=progress, unit="documents")
