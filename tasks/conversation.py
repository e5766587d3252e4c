"""`tierline.complete`: one conversation job → exactly one JobResult.

Thin: validate, read routing state, call the router, record the result. A poor answer
re-queues the job to a stronger tier with `Task.replace` (same job id).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from contract.errors import JobFailed
from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from contract.schemas import JobResult, parse_job
from tasks.delivery import count_overhead, deliver, finishing, given_job
from tasks.requeue import job_record, requeue
from worker import tracing
from worker.celery import app
from worker.record import JobRecord
from worker.router import Decision, Escalate
from worker.runtime import Runtime, runtime
from worker.shadow import TASK_SHADOW, live_side, wanted
from worker.shown_results import StoredResult, returned

log = logging.getLogger(__name__)


@app.task(name=TASK_COMPLETE, bind=True, throws=(JobFailed,))
def complete(self: Task, *args: Any, **kwargs: Any) -> StoredResult:
    """Route the job in ``kwargs["job"]`` (or the first argument); return its JobResult
    (a failed job's task ends with `JobFailed` carrying it: FAILURE in Flower)."""
    started = time.monotonic()  # the soft limit runs from here, not from when runtime() is built
    rt = runtime()
    job_id = str(self.request.id)
    record, refused = job_record(job_id, kwargs.pop("carry", None), rt, started)
    payload = given_job(args, kwargs)
    level = record.carry.level
    with (tracing.delivery_span(self.request, task=self.name, job_id=job_id, level=level) as span,
          rt.soft_limit(started)):
        earlier_attempts = len(record.carry.attempts)
        decision = _decide(self, rt, record, args, kwargs) if refused is None else rt.router.failed(record, refused)
        if isinstance(decision, JobResult):
            if not record.replayed:
                rt.count_result(decision, payload)
            tracing.describe_result(span, decision)
        count_overhead(rt, self, started, record.carry.attempts[earlier_attempts:])
        return finishing(rt, record.job_id, lambda: _record(self, rt, record, decision, payload))


def _record(task: Task, rt: Runtime, record: JobRecord, decision: Decision, job: object) -> StoredResult:
    """Re-queue an escalated job under its own id, or return its JobResult for the backend."""
    rt.flush_metrics()
    job_id = str(task.request.id)
    if isinstance(decision, Escalate):
        # The same job payload, untouched, plus what the earlier generations carry. Returns
        # only when Redis stayed away past the job's time: the job fails here.
        decision = requeue(task, task.name, job, decision.carry, record)
        rt.count_result(decision, job)
    _shadow(task, rt, decision, job)
    log.info(
        "job done job=%s status=%s model=%s tier=%s tokens=%s attempts=%d cost=%.6f",
        job_id, decision.status, decision.model, decision.tier, decision.routed_tokens,
        len(decision.attempts), decision.cost_usd,
    )
    return returned(decision, redact=rt.settings.redact_results)


def _shadow(task: Task, rt: Runtime, result: JobResult, job: object) -> None:
    """Send the shadow task when live control shadows this job (its answer is only recorded)."""
    shadow = rt.live.live.overlay.shadow
    if shadow is None or not wanted(shadow, result):
        return
    task.app.send_task(TASK_SHADOW, kwargs={"job": job, "job_id": result.job_id, "model": shadow.model,
                                            "live": live_side(result).model_dump(mode="json")},
                       queue=QUEUE_CONVERSATIONS,
                       argsrepr=f"shadow of job={result.job_id}", kwargsrepr="{}")


def _decide(
    task: Task, rt: Runtime, record: JobRecord, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Decision:
    return deliver(task, rt, record, args, kwargs, parse=parse_job,
                   run=lambda job, busy: rt.router.route(job, record, busy))

