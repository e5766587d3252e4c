"""The parts of a chunked document: `tierline.extract_chunk` and `tierline.extract_merge`.

A chunk task extracts one chunk under its own time limits, on whichever worker takes
it, and re-queues itself one tier up (same task id, same place in the chord) when its
answer is poor; the carry it takes along is sealed, and a carry without a valid seal
fails the chunk (`forged_carry`). Its task id is ``<job id>:chunk:<i>``: a redelivered
chunk whose result is stored returns it without calling a provider (`tasks.delivery`).
The merge step runs once every chunk has a result, under the document's job id, and
stores the document's one JobResult there.

Both return a `StoredResult`: events, Flower and logs see a summary, never the answers.
With ``TIERLINE_REDACT_RESULTS`` the document's result is redacted before it is stored;
the parts of a document of several chunks are stored as they are (the merge needs the
values the answers gave, unmerged duplicates and schema patterns included) and the merge
releases them as soon as the document's result is made.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, current_task
from celery.exceptions import Ignore

from contract.codes import ErrorCode
from contract.errors import JobFailed
from contract.names import TASK_EXTRACT_CHUNK, TASK_EXTRACT_MERGE, chunk_id
from contract.schemas import ErrorInfo, JobResult, parse_chunk_job, parse_merge_job
from results import store_for
from tasks.delivery import count_overhead, deliver, finishing
from tasks.extraction import log_result
from tasks.requeue import job_record, requeue
from worker import errors, redis_wait, tracing
from worker.celery import app
from worker.extractor import Extractor
from worker.intake import IntakeTask
from worker.record import JobRecord
from worker.router import Decision, Escalate
from worker.runtime import Runtime, runtime
from worker.shown_results import StoredResult, returned, stored

log = logging.getLogger(__name__)


@app.task(name=TASK_EXTRACT_CHUNK, bind=True, throws=(JobFailed,))
def extract_chunk(self: Task, *args: Any, **kwargs: Any) -> StoredResult:
    """Extract the chunk in ``kwargs["job"]``; return its JobResult (or re-queue it).

    A chunk of several returns its JobResult, failed or not (the merge reads it); the one
    chunk of a one-chunk document re-queued under the document's id is the document's
    result: counted in the metrics, and a failed one ends `JobFailed` (FAILURE)."""
    started = time.monotonic()
    rt = runtime()
    job_id = str(self.request.id)
    # The last chunk publishes the merge after this returns (MergeTask), within its own time.
    self.request.merge_publish_by = rt.deadline(started)
    record, refused = job_record(job_id, kwargs.pop("carry", None), rt, started)
    extractor = Extractor(rt.router, rt.state, rt.counter, rt.metrics)
    document = not _part_of_many(kwargs.get("job"))
    with (tracing.delivery_span(self.request, task=self.name, job_id=record.job_id, level=record.carry.level) as span,
          rt.soft_limit(started)):
        earlier_attempts = len(record.carry.attempts)
        decision = rt.router.failed(record, refused) if refused is not None else deliver(
            self, rt, record, args, kwargs, parse=parse_chunk_job,
            run=lambda job, busy: extractor.chunk(job, record, busy))
        if isinstance(decision, JobResult):
            if document and not record.replayed:
                rt.count_result(decision, None)
            tracing.describe_result(span, decision)
        count_overhead(rt, self, started, record.carry.attempts[earlier_attempts:])
        return finishing(rt, record.job_id,
                         lambda: _record_chunk(self, rt, record, decision, kwargs, document=document))


def _record_chunk(
    task: Task, rt: Runtime, record: JobRecord, decision: Decision, kwargs: dict[str, Any], *, document: bool
) -> StoredResult:
    rt.flush_metrics()
    if isinstance(decision, Escalate):
        # Returns only when Redis stayed away past the chunk's time: the chunk fails here.
        decision = requeue(task, TASK_EXTRACT_CHUNK, kwargs.get("job"), decision.carry, record)
        if document:
            rt.count_result(decision, None)
    log_result("chunk done", decision)
    if document:
        return returned(decision, redact=rt.settings.redact_results)
    return stored(decision, redact=False)  # the merge redacts the document's result


def _part_of_many(job: object) -> bool:
    """Whether the chunk is one of several (merged later), not a one-chunk document's own."""
    total = job.get("chunk_total") if isinstance(job, dict) else None
    return isinstance(total, int) and total > 1


class MergeTask(IntakeTask):
    """The merge's task class. The last chunk of a document to finish publishes the merge
    (Celery's chord callback, from the chunk's result write), and Celery fails the document
    with a `ChordError` once its publish retry policy is spent (4 tries). Published by a chunk
    running here, the merge waits out a Redis outage instead (`worker.redis_wait`), until the
    chunk's own deadline (its soft limit, which is held after its decision). Each try first
    pings the results' Redis, then publishes with Celery's retries. The room up to the
    hard limit (30 s by default) is for the last try and, if Redis is still away, for Celery
    to store the `ChordError`: a chunk stopped by its hard limit in the middle of the
    publish would leave the document with no result at all. Celery's claim on the chord
    (~20 s) may lapse during a long wait: its keys are then left to expire instead of being
    deleted, and a later copy of a chunk may publish the merge again, which `extract_merge`
    answers from the document's first end."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        publish = super().apply_async
        by = getattr(current_task.request, "merge_publish_by", None) if current_task else None
        if by is None:  # not published by a chunk running in this process
            return publish(args, kwargs, **options)
        return redis_wait.publish_within(by, "to publish the merge", self.backend,
                                         lambda: publish(args, kwargs, **options))


@app.task(name=TASK_EXTRACT_MERGE, bind=True, throws=(JobFailed,), base=MergeTask)
def extract_merge(self: Task, results: object = None, **kwargs: Any) -> StoredResult:
    """Merge the chunk results the chord hands over into the document's JobResult (a failed
    document's task ends with `JobFailed` carrying it: FAILURE in Flower)."""
    rt = runtime()
    job_id = str(self.request.id)
    # A merge sent again (redelivered, or published twice): the document's first end stands.
    store = store_for(self.backend)
    earlier = store.read([job_id]).get(job_id)
    ended = earlier.ended() if earlier is not None else None
    if ended is not None:
        return returned(ended, redact=False)  # redacted, if at all, when it was stored
    if earlier is not None or store.collected(job_id):
        # Celery's own failure is stored (a ChordError), or the producer already collected
        # the document's result: nothing is stored over it, and no task event is sent.
        log.warning("merge sent again job=%s: the document already ended, this copy was not run", job_id)
        raise Ignore()
    part_ids: list[str] = []  # the document's own chunks, never ids the message names
    try:
        job = parse_merge_job(kwargs.get("merge"))
        part_ids = [chunk_id(job_id, i) for i in range(job.chunk_total)]
        parts = [JobResult.model_validate(r) for r in (results if isinstance(results, list) else [])]
        result = Extractor(rt.router, rt.state, rt.counter, rt.metrics).merged(job_id, job, parts)
    except errors.InvalidJob as exc:
        result = JobResult(job_id=job_id, status="failed", error=ErrorInfo(code=exc.code, message=str(exc)))
    except ValueError as exc:
        log.warning("malformed chunk results job=%s: %s", job_id, type(exc).__name__)
        result = JobResult(job_id=job_id, status="failed", error=ErrorInfo(
            code=ErrorCode.INTERNAL_ERROR, message="a chunk result could not be read"))
    rt.count_result(result, None)
    rt.flush_metrics()
    log_result("extraction done", result)
    try:  # a failed document ends JobFailed (FAILURE); its parts are released either way
        return finishing(rt, job_id, lambda: returned(result, redact=rt.settings.redact_results))
    finally:
        if rt.settings.redact_results:
            _release_parts(self, job_id, part_ids)


def _release_parts(task: Task, job_id: str, part_ids: list[str]) -> None:
    """Free the parts' unredacted results now that the document's is made (else they expire).
    Best effort: nothing here may keep the document from its result."""
    try:
        store_for(task.backend).release(part_ids)
    except Exception as exc:  # noqa: BLE001  (a backend error: past the decision no soft limit lands here)
        log.warning("chunk results of job=%s not released (%s): they expire with the result expiry",
                    job_id, type(exc).__name__)
