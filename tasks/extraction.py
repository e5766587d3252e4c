"""`tierline.extract`: a document and a JSON Schema → exactly one JobResult, `parsed` set.

Thin: validate, read routing state, plan the document (`Extractor.start`). One chunk is
extracted here (a poor answer re-queues it one tier up as a chunk task under the same
job id). Several chunks: the task replaces itself with a chord of chunk tasks and a
merge step (`tasks.chunks`); `Task.replace` freezes the chord's merge step with this
task's id, so the document's JobResult is stored under its own job id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Signature, Task, chord, group

from contract.errors import JobFailed
from contract.names import TASK_EXTRACT, TASK_EXTRACT_CHUNK, TASK_EXTRACT_MERGE, chunk_id
from contract.schemas import Carry, JobResult, parse_extraction_job
from tasks.delivery import count_overhead, deliver, finishing, given_job
from tasks.requeue import replaced, requeue
from worker import tracing
from worker.celery import app
from worker.extractor import ChunkEscalate, Extractor, Fanout, Started
from worker.record import JobRecord
from worker.runtime import Runtime, runtime
from worker.shown_results import returned

log = logging.getLogger(__name__)


@app.task(name=TASK_EXTRACT, bind=True, throws=(JobFailed,))
def extract(self: Task, *args: Any, **kwargs: Any) -> Any:
    """Extract the job in ``kwargs["job"]`` (or the first argument); return its JobResult
    (a failed job's task ends with `JobFailed` carrying it: FAILURE in Flower)."""
    started = time.monotonic()  # the soft limit runs from here, not from when runtime() is built
    rt = runtime()
    record = JobRecord(str(self.request.id), Carry(started_at=time.time()), deadline=rt.deadline(started))
    extractor = Extractor(rt.router, rt.state, rt.counter, rt.metrics)
    with (tracing.delivery_span(self.request, task=self.name, job_id=record.job_id, level=0) as span,
          rt.soft_limit(started)):
        decision = deliver(self, rt, record, args, kwargs, parse=parse_extraction_job,
                           run=lambda job, busy: extractor.start(job, record, busy))
        payload = given_job(args, kwargs)
        if isinstance(decision, JobResult):
            if not record.replayed:
                rt.count_result(decision, payload)
            tracing.describe_result(span, decision)
            count_overhead(rt, self, started, decision.attempts)
        return finishing(rt, record.job_id, lambda: _record(self, rt, record, decision, payload))


def _record(task: Task, rt: Runtime, record: JobRecord, started: Started, job: object) -> Any:
    rt.flush_metrics()
    if isinstance(started, Fanout):
        # Returns only when Redis stayed away past the job's time: the job fails here.
        started = fan_out(task, started, record)
        rt.count_result(started, job)
    elif isinstance(started, ChunkEscalate):
        # A one-chunk document: its chunk goes one tier up as a chunk task, same job id (the
        # call returns only when Redis stayed away past the job's time: the job fails here).
        chunk = started.chunk.model_dump(mode="json", by_alias=True)
        started = requeue(task, TASK_EXTRACT_CHUNK, chunk, started.carry, record)
        rt.count_result(started, job)
    log_result("extraction done", started)
    return returned(started, redact=rt.settings.redact_results)


def fan_out(task: Task, fanout: Fanout, record: JobRecord) -> JobResult:
    """Replace `task` with a chord: a task per chunk (ids ``<job>:chunk:<i>``), then the merge.

    Raises Celery's `Ignore` once the chord is sent; returns only the job's failed JobResult
    when Redis stayed away past its time (`tasks.requeue.replaced`). A try that failed after
    some or all of its chunk messages went out is followed by the same chord again: one group
    id for every try (``<job>:chunks``), and Celery's chord counts a chunk once per group (by
    its id and place), so the merge runs once. A chunk whose message went out twice is
    answered from its first copy's stored result when that copy has finished or still holds
    its lease (`tasks.delivery`); otherwise it runs again (one more call).
    """
    return replaced(task, record, "to fan the document out", lambda: _chord(task, fanout))


def _chord(task: Task, fanout: Fanout) -> Signature:
    job_id = str(task.request.id)
    total = len(fanout.chunks)
    header = [
        task.app.signature(
            TASK_EXTRACT_CHUNK, kwargs={"job": chunk.model_dump(mode="json", by_alias=True)},
            task_id=chunk_id(job_id, chunk.chunk_index),
            argsrepr=f"job={chunk_id(job_id, chunk.chunk_index)} chunk {chunk.chunk_index + 1}/{total} "
            f"chars={len(chunk.document)}", kwargsrepr="{}",
        )
        for chunk in fanout.chunks
    ]
    merge = task.app.signature(
        TASK_EXTRACT_MERGE, kwargs={"merge": fanout.merge.model_dump(mode="json", by_alias=True)},
        argsrepr=f"job={job_id} chunk results={total}", kwargsrepr="{}",
    )
    fanned = chord(header, merge)
    fanned.tasks = group(header, task_id=f"{job_id}:chunks", app=task.app)  # chord() drops a group's id
    log.info("extraction fans out job=%s chunks=%d", job_id, total)
    return fanned


def log_result(what: str, result: JobResult) -> None:
    log.info(
        "%s job=%s status=%s chunks=%s model=%s tier=%s tokens=%s attempts=%d "
        "escalations=%d cost=%.6f", what, result.job_id, result.status, result.chunks, result.model, result.tier,
        result.routed_tokens, len(result.attempts), len(result.escalations), result.cost_usd,
    )
