"""`tierline.extract`: a document and a JSON Schema → exactly one JobResult, `parsed` set.

Thin: validate, read routing state, hand the document to the `Extractor` (chunks, quality
gate, in-process escalation per chunk, merge), record the result.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from contract.names import TASK_EXTRACT
from contract.schemas import Carry, JobResult, parse_extraction_job
from tasks.delivery import deliver, finishing
from worker.celery import app
from worker.extractor import Extractor
from worker.router import JobRecord
from worker.runtime import Runtime, runtime

log = logging.getLogger(__name__)


@app.task(name=TASK_EXTRACT, bind=True)
def extract(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Extract the job in ``kwargs["job"]`` (or the first argument); return its JobResult."""
    started = time.monotonic()  # the soft limit runs from here, not from when runtime() is built
    rt = runtime()
    record = JobRecord(str(self.request.id), Carry(started_at=time.time()), deadline=rt.deadline(started))
    extractor = Extractor(rt.router, rt.state, rt.counter, rt.metrics)
    with rt.soft_limit(started):
        result = deliver(self, rt, record, args, kwargs, parse=parse_extraction_job,
                         run=lambda job, busy: extractor.run(job, record, busy))
        return finishing(record.job_id, lambda: _record(rt, result))


def _record(rt: Runtime, result: JobResult) -> dict[str, Any]:
    rt.flush_metrics()
    log.info(
        "extraction done job=%s status=%s chunks=%s model=%s tier=%s tokens=%s attempts=%d "
        "escalations=%d cost=%.6f", result.job_id, result.status, result.chunks, result.model, result.tier,
        result.routed_tokens, len(result.attempts), len(result.escalations), result.cost_usd,
    )
    return result.model_dump(mode="json")
