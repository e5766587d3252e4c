"""A document's output record, and how a document run resumes.

OUT, one record per document the workers finished::

    {"id": "contracts/a.pdf", "job_id": "...", "status": "succeeded", "data": {...},
     "error": null, "chunks": 3, "sources": {...}, "tierline": {...routing fields...}}

``data`` is the merged extraction (null when the document failed); ``sources`` is there
when the run asked for provenance. The errors file holds the records of failed documents
and of documents that never became a job (unreadable, empty, binary, ...), with their
``number`` in the source. A document is done when its job id is in OUT: the job id
covers the document's text, so a changed document is extracted again.
"""

from __future__ import annotations

from typing import Any

from contract.names import chunk_id
from producers.batch.files import RecordFormat
from producers.batch.records import LineOutcome, routing_fields


def document_record(outcome: LineOutcome) -> dict[str, Any]:
    """OUT's record of a document the workers finished."""
    result = outcome.result
    error = outcome.error
    record: dict[str, Any] = {
        "id": outcome.custom_id,
        "job_id": outcome.job_id,
        "status": result.status if result is not None else "failed",
        "data": result.parsed if result is not None and result.ok else None,
        "error": None if outcome.ok or error is None else error.model_dump(),
    }
    if result is not None:
        record["chunks"] = result.chunks
        if result.sources is not None:
            record["sources"] = result.sources
        record["tierline"] = routing_fields(result)
    return record


def document_error_record(outcome: LineOutcome) -> dict[str, Any]:
    """The errors file's record: OUT's record plus the document's number in the source."""
    return {**document_record(outcome), "number": outcome.line}


def _done_key(record: dict[str, Any]) -> str | None:
    job_id = record.get("job_id")
    return job_id if isinstance(job_id, str) else None


def _error_key(record: dict[str, Any]) -> str:
    error = record.get("error") or {}
    return f"{record.get('id')}@{record.get('job_id') or error.get('code')}"


def _released(outcome: LineOutcome) -> list[str]:
    """The document's stored result and its chunks' (kept until written, for redeliveries)."""
    if outcome.job_id is None:
        return []
    chunks = outcome.result.chunks if outcome.result is not None else None
    return [outcome.job_id, *(chunk_id(outcome.job_id, i) for i in range(chunks or 0) if chunks and chunks > 1)]


DOCUMENTS = RecordFormat(document_record, document_error_record, _done_key, _error_key, _released)
