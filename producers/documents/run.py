"""Documents through the workers: a folder or a JSONL of documents into OUT.jsonl.

The batch machinery does the running (`producers.batch`: the window, the resume from
OUT, the errors file, the release of written results); this module turns documents
into extraction jobs. A document's job id is a uuid5 of the source's resolved path,
the document's id and a digest of its job (its text, the schema and the options), so
running the same command again resumes, and a document whose text changed is
extracted again.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterator, Mapping
from pathlib import Path
from typing import Any

from celery import Celery

from contract.errors import InvalidJob
from contract.names import QUEUE_EXTRACTION, TASK_EXTRACT
from contract.schemas import parse_extraction_job
from producers.batch.errors import BatchRejected
from producers.batch.handle import BatchHandle, BatchProgress
from producers.batch.identity import job_id, scope_of
from producers.batch.records import LineOutcome
from producers.batch.run import FileRun
from producers.batch.window import Ticket
from producers.client import producer_app
from producers.documents.records import DOCUMENTS
from producers.documents.sources import DEFAULT_MAX_BYTES, Document, DocumentSource

# Documents are big: fewer in flight than chat lines, and sent a few at a time.
DEFAULT_DOCUMENT_WINDOW = 64
_ADMIT_EVERY = 8


class InvalidExtraction(BatchRejected):
    """The schema or the options cannot make an extraction job; nothing was sent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def submit_documents(
    source: Path, schema: Mapping[str, Any], *, window: int = DEFAULT_DOCUMENT_WINDOW,
    skip: Container[str] = frozenset(), exclude: Collection[Path] = (), max_bytes: int = DEFAULT_MAX_BYTES,
    scope: str | None = None, app: Celery | None = None, **options: Any,
) -> BatchHandle:
    """Check the documents of `source` and return a handle whose `results()` runs them.

    source: a folder (every file in it, by name order; hidden files left out) or a JSONL
    of ``{"id", "text"}`` lines. schema: the JSON Schema to extract (see
    `submit_extraction`). window: most documents in flight. skip: job ids already done.
    exclude: files of the folder that are not documents. max_bytes: the largest document.
    scope: the identity job ids derive from (default: the source's resolved path). app:
    the producer app. options: extraction options (``instructions``, ``policy``,
    ``provenance``, ``max_output_tokens``, ...). Raises `InvalidExtraction` for a bad
    schema or option, `DuplicateCustomIds` for a JSONL whose ids repeat.
    """
    app = app or producer_app()
    check_job(schema, options)
    documents = DocumentSource(source, exclude=exclude, max_bytes=max_bytes)
    try:
        progress = BatchProgress(total=documents.count())
    except BaseException:
        documents.close()
        raise
    tickets = _tickets(documents, dict(schema), options, scope=scope or scope_of(source), skip=skip,
                       progress=progress)
    return BatchHandle(tickets, queue=QUEUE_EXTRACTION, window=window, app=app, progress=progress,
                       admit=_ADMIT_EVERY, on_close=documents.close)


def check_job(schema: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """Raise `InvalidExtraction` unless `schema` and `options` make a valid extraction job."""
    try:
        parse_extraction_job({"document": "-", "schema": dict(schema), **options})
    except InvalidJob as exc:
        raise InvalidExtraction(exc.code, f"{exc.code}: {exc}") from exc


def _tickets(
    documents: DocumentSource, schema: dict[str, Any], options: Mapping[str, Any], *, scope: str,
    skip: Container[str], progress: BatchProgress,
) -> Iterator[Ticket | LineOutcome]:
    for document in documents:
        if document.text is None:
            yield LineOutcome(line=document.number, custom_id=document.id, invalid=document.error)
            continue
        job = _job(document, schema, options)
        key = job_id(scope, document.id, job)
        if key in skip:
            progress.skipped += 1
            continue
        yield Ticket(document.number, document.id, key, job, task=TASK_EXTRACT)


def _job(document: Document, schema: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    metadata = {"document_id": document.id, **options.get("metadata", {})}
    return {**options, "document": document.text, "schema": schema, "metadata": metadata}


class DocumentRun(FileRun):
    """Documents of `source` into OUT (`output`), resumable; open with `with`.

    errors: the errors file (default ``<out>.errors.jsonl``). Other arguments: as for
    `submit_documents`.
    """

    def __init__(
        self, source: Path, schema: Mapping[str, Any], output: Path, *, errors: Path | None = None,
        window: int = DEFAULT_DOCUMENT_WINDOW, max_bytes: int = DEFAULT_MAX_BYTES, app: Celery | None = None,
        **options: Any,
    ) -> None:
        super().__init__(output, errors=errors, form=DOCUMENTS, inputs=() if source.is_dir() else (source,))
        self.source, self.schema = source, schema
        self._window, self._max_bytes, self._app, self._options = window, max_bytes, app, options

    def _open_handle(self, skip: Container[str]) -> BatchHandle:
        return submit_documents(
            self.source, self.schema, window=self._window, skip=skip, exclude=(self.output, self.errors),
            max_bytes=self._max_bytes, app=self._app, **self._options,
        )


def run_extraction(
    source: Path, schema: Mapping[str, Any], output: Path, *, errors: Path | None = None,
    window: int = DEFAULT_DOCUMENT_WINDOW, app: Celery | None = None, **options: Any,
) -> BatchProgress:
    """Extract every document of `source` into `output` to the end; the run's counts.

    The same call again resumes (see `DocumentRun`); options as for `submit_documents`.
    """
    with DocumentRun(source, schema, output, errors=errors, window=window, app=app, **options) as run:
        for _ in run.run():
            pass
        return run.progress
