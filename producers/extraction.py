"""Submit extraction jobs: a document's text and a JSON Schema → validated JSON.

The JobResult's `parsed` holds the extracted object (merged across chunks when the
document is bigger than the chosen model's context); `content` holds it as JSON text.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from celery import Celery

from contract.names import TASK_EXTRACT
from producers.client import JobHandle, send_job


def submit_extraction(
    document: str,
    schema: Mapping[str, Any],
    *,
    job_id: str | None = None,
    app: Celery | None = None,
    **options: Any,
) -> JobHandle:
    """Enqueue an extraction job on the ``extraction`` queue.

    document: the text to extract from. schema: a JSON Schema of an object; a top-level
    property merges across chunks by its type (lists: items equal once normalised are
    kept once; scalars: the first non-empty) or by an ``"x-merge"`` annotation
    (``"union"``, ``"concat"``, ``"first"``). job_id: idempotency
    key, also the Celery task id (a new uuid when None). options: ``instructions``,
    ``critical``, ``pin_model``, ``min_tier``, ``policy``, ``max_output_tokens``,
    ``temperature``, ``metadata``, ``quality``, ``provenance`` (the result's ``sources``
    say where each value came from: chunk and character offsets in the document).
    """
    job_id = job_id or str(uuid.uuid4())
    job = {"job_id": job_id, "document": document, "schema": dict(schema), **options}
    return send_job(job, app=app, task=TASK_EXTRACT, shown=f"job={job_id} document chars={len(document)}")
