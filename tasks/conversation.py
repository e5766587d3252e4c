"""`tierline.complete`: one conversation job → exactly one JobResult.

Thin: validate, read routing state, call the router, record the result. A poor answer
re-queues the job to a stronger tier with `Task.replace` (same job id).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from tasks.schemas import TASK_COMPLETE, Carry, ErrorInfo, JobResult, parse_job
from worker import errors
from worker.celery import app
from worker.router import Decision, Escalate, JobRecord
from worker.runtime import Runtime, runtime

log = logging.getLogger(__name__)


@app.task(name=TASK_COMPLETE, bind=True)
def complete(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Route the job in ``kwargs["job"]`` (or the first argument); return its JobResult."""
    rt = runtime()
    job_id = str(self.request.id)
    carry = _carry(kwargs.pop("carry", None))
    record = JobRecord(job_id, carry, deadline=rt.deadline())
    decision = _decide(self, rt, record, args, kwargs)
    if isinstance(decision, Escalate):
        sig = self.signature(
            kwargs={"job": kwargs.get("job", args[0] if args else None),
                    "carry": decision.carry.model_dump(mode="json")},
            argsrepr=f"job={job_id}", kwargsrepr=f"{{level: {decision.carry.level}}}",
        )
        return self.replace(sig)  # type: ignore[no-any-return]
    rt.flush_metrics()
    log.info(
        "job done job=%s status=%s model=%s tier=%s tokens=%s attempts=%d cost=%.6f",
        job_id, decision.status, decision.model, decision.tier, decision.routed_tokens,
        len(decision.attempts), decision.cost_usd,
    )
    return decision.model_dump(mode="json")


def _decide(
    task: Task, rt: Runtime, record: JobRecord, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Decision:
    try:
        job = parse_job(_payload(args, kwargs))
        snapshot = rt.state.read(rt.catalog.model_names, job_id=record.job_id, level=record.carry.level)
        if snapshot.delivery > 1:
            earlier = _stored_result(task, record.job_id)
            if earlier is not None:
                return earlier
        if snapshot.delivery > rt.settings.max_deliveries:
            return rt.router.failed(record, ErrorInfo(
                code="worker_lost",
                message=f"delivered {snapshot.delivery} times without finishing: "
                "its worker died each time",
            ))
        return rt.router.route(job, record, snapshot.busy)
    except errors.InvalidJob as exc:
        log.warning("invalid job job=%s code=%s: %s", record.job_id, exc.code, exc)
        return rt.router.failed(record, ErrorInfo(code=exc.code, message=str(exc)))
    except SoftTimeLimitExceeded:
        log.warning("soft time limit job=%s attempts=%d", record.job_id, len(record.carry.attempts))
        return rt.router.interrupted(record, "the job hit the soft time limit")
    except Exception as exc:  # the task boundary: a bug still ends as one failed JobResult
        log.exception("internal error job=%s", record.job_id)
        return rt.router.interrupted(record, f"internal error: {type(exc).__name__}", code="internal_error")


def _payload(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    if "job" in kwargs and not args and len(kwargs) == 1:
        return kwargs["job"]
    if len(args) == 1 and not kwargs:
        return args[0]
    raise errors.InvalidJob(
        f"expected one job (kwargs {{'job': ...}}), got {len(args)} positional "
        f"and keyword arguments {sorted(kwargs)}",
        code="malformed_message",
    )


def _carry(raw: object) -> Carry:
    if isinstance(raw, dict):
        try:
            return Carry.model_validate(raw)
        except ValueError:
            log.warning("ignoring a malformed carry")
    return Carry(started_at=time.time())


def _stored_result(task: Task, job_id: str) -> JobResult | None:
    """The job's result if an earlier delivery already stored one (redelivery, resubmission)."""
    meta = task.backend.get_task_meta(job_id)
    if meta.get("status") != "SUCCESS" or not isinstance(meta.get("result"), dict):
        return None
    try:
        return JobResult.model_validate(meta["result"])
    except ValueError:
        return None
