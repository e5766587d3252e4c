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
from producers.client import JobHandle, producer_app


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
    property merges across chunks by its type (lists concatenated, scalars first
    non-empty) or by an ``"x-merge": "concat"|"first"`` annotation. job_id: idempotency
    key, also the Celery task id (a new uuid when None). options: ``instructions``,
    ``critical``, ``pin_model``, ``min_tier``, ``policy``, ``max_output_tokens``,
    ``temperature``, ``metadata``, ``quality``.
    """
    app = app or producer_app()
    task_id = job_id or str(uuid.uuid4())
    job = {"job_id": task_id, "document": document, "schema": dict(schema), **options}
    app.send_task(
        TASK_EXTRACT, kwargs={"job": job}, task_id=task_id,
        argsrepr=f"job={task_id} document chars={len(document)}", kwargsrepr="{}",
    )
    return JobHandle(task_id, app)
