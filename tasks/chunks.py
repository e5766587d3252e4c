"""The parts of a chunked document: `tierline.extract_chunk` and `tierline.extract_merge`.

A chunk task extracts one chunk under its own time limits, on whichever worker takes
it, and re-queues itself one tier up (same task id, same place in the chord) when its
answer is poor. Its task id is ``<job id>:chunk:<i>``: a redelivered chunk whose result
is stored returns it without calling a provider (`tasks.delivery`). The merge step runs
once every chunk has a result, under the document's job id, and stores the document's
one JobResult there.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from contract.codes import ErrorCode
from contract.names import TASK_EXTRACT_CHUNK, TASK_EXTRACT_MERGE
from contract.schemas import ErrorInfo, JobResult, parse_chunk_job, parse_merge_job
from tasks.delivery import deliver, finishing, stored_result
from tasks.extraction import log_result
from tasks.requeue import carried, requeue
from worker import errors
from worker.celery import app
from worker.extractor import Extractor
from worker.record import JobRecord
from worker.router import Decision, Escalate
from worker.runtime import Runtime, runtime

log = logging.getLogger(__name__)


@app.task(name=TASK_EXTRACT_CHUNK, bind=True)
def extract_chunk(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Extract the chunk in ``kwargs["job"]``; return its JobResult (or re-queue it)."""
    started = time.monotonic()
    rt = runtime()
    record = JobRecord(str(self.request.id), carried(kwargs.pop("carry", None)), deadline=rt.deadline(started))
    extractor = Extractor(rt.router, rt.state, rt.counter, rt.metrics)
    with rt.soft_limit(started):
        decision = deliver(self, rt, record, args, kwargs, parse=parse_chunk_job,
                           run=lambda job, busy: extractor.chunk(job, record, busy))
        return finishing(record.job_id, lambda: _record_chunk(self, rt, decision, kwargs))


def _record_chunk(task: Task, rt: Runtime, decision: Decision, kwargs: dict[str, Any]) -> dict[str, Any]:
    rt.flush_metrics()
    if isinstance(decision, Escalate):
        return requeue(task, TASK_EXTRACT_CHUNK, kwargs.get("job"), decision.carry)  # type: ignore[no-any-return]
    log_result("chunk done", decision)
    return decision.model_dump(mode="json")


@app.task(name=TASK_EXTRACT_MERGE, bind=True)
def extract_merge(self: Task, results: object = None, **kwargs: Any) -> dict[str, Any]:
    """Merge the chunk results the chord hands over into the document's JobResult."""
    rt = runtime()
    job_id = str(self.request.id)
    stored = stored_result(self, job_id)  # a redelivered merge: its result is already stored
    if stored is not None:
        return stored.model_dump(mode="json")
    try:
        job = parse_merge_job(kwargs.get("merge"))
        parts = [JobResult.model_validate(r) for r in (results if isinstance(results, list) else [])]
        result = Extractor(rt.router, rt.state, rt.counter, rt.metrics).merged(job_id, job, parts)
    except errors.InvalidJob as exc:
        result = JobResult(job_id=job_id, status="failed", error=ErrorInfo(code=exc.code, message=str(exc)))
    except ValueError as exc:
        log.warning("malformed chunk results job=%s: %s", job_id, type(exc).__name__)
        result = JobResult(job_id=job_id, status="failed", error=ErrorInfo(
            code=ErrorCode.INTERNAL_ERROR, message="a chunk result could not be read"))
    rt.flush_metrics()
    log_result("extraction done", result)
    return finishing(job_id, lambda: result.model_dump(mode="json"))
