"""Re-queue a job under its own id: a poor answer goes one tier up through the broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import Signature, Task

from contract.codes import ErrorCode
from contract.schemas import Carry, ErrorInfo, JobResult
from worker import carry_seal, errors, redis_wait, tracing
from worker.record import JobRecord
from worker.runtime import Runtime, runtime

log = logging.getLogger(__name__)


def requeue(task: Task, name: str, job: object, carry: Carry, record: JobRecord) -> JobResult:
    """Replace `task` with task `name` (same id) on `job`, carrying the earlier generations.

    job: the job payload, untouched. Raises Celery's `Ignore` once the new message is sent;
    returns only the job's failed JobResult when Redis stayed away past its time (`replaced`).
    """
    return replaced(task, record, "to re-queue the job", lambda: _next_message(task, name, job, carry))


def _next_message(task: Task, name: str, job: object, carry: Carry) -> Signature:
    """The job's next message, its carry sealed (worker/carry_seal.py: the next delivery
    refuses a carry it did not get from a worker)."""
    job_id = str(task.request.id)
    sealed = carry_seal.sealed(job_id, carry.model_dump(mode="json"), runtime().carry_secret)
    return task.app.signature(
        name, kwargs={"job": job, "carry": sealed},
        argsrepr=f"job={job_id}", kwargsrepr=escalated(carry),
        headers=tracing.context_headers(task.request),  # the next delivery continues this trace
    )


def replaced(task: Task, record: JobRecord, what: str, replacement: Callable[[], Signature]) -> JobResult:
    """Replace `task` with what `replacement` builds (anew for each try: `Task.replace`
    freezes the signature it is given and links the request's callbacks onto it).

    Raises Celery's `Ignore` once it is sent. While Redis (the broker, the results, the carry
    key) is unreachable it waits, within the job's time (`record.deadline`); past it, returns
    the job's failed JobResult (``out_of_time``), the reason naming `what`.
    """
    try:
        redis_wait.publish_within(record.deadline, what, task.backend, lambda: task.replace(replacement()))
    except errors.RedisAway as exc:
        return runtime().router.failed(record, ErrorInfo(code=exc.code, message=str(exc)))
    raise AssertionError("Task.replace returned: it does only for an eager task, which tierline never runs")


def escalated(carry: Carry) -> str:
    """What Flower shows of a re-queued job: that it escalated, and along which tiers."""
    if not carry.escalations:
        return f"{{level: {carry.level}}}"
    path = "→".join([e.from_tier for e in carry.escalations] + [carry.escalations[-1].to_tier or "-"])
    return f"{{escalated: {path}, level: {carry.level}}}"


def job_record(job_id: str, raw: object, rt: Runtime, started: float) -> tuple[JobRecord, ErrorInfo | None]:
    """The record of this delivery of `job_id` (begun at `started`, monotonic) with the carry
    its message brings (`raw`), and why the job fails before it runs, if it does (`carried`):
    such a job's record lists no earlier attempt."""
    deadline = rt.deadline(started)
    carry = carried(job_id, raw, lambda: rt.carry_secret, deadline=deadline)
    if isinstance(carry, ErrorInfo):
        return JobRecord(job_id, Carry(started_at=time.time()), deadline=deadline), carry
    return JobRecord(job_id, carry, deadline=deadline), None


def carried(job_id: str, raw: object, secret: Callable[[], bytes], *, deadline: float) -> Carry | ErrorInfo:
    """The carry a re-queued message brings (a fresh one for a first delivery), or why the
    job fails instead: `FORGED` when it is not sealed by a worker for `job_id` (a hand-made
    message may not set routed tokens, tier, attempts or costs), ``out_of_time`` when Redis
    stayed unreachable until `deadline` (monotonic) while the key was read.

    secret: gives the workers' carry key (`Runtime.carry_secret`), asked only when there is a
    carry to open: a first delivery makes no Redis call before its guarded delivery read
    (the first read of the shared key, failing in a Redis restart, once failed a job).
    """
    if raw is None:
        return Carry(started_at=time.time())
    try:
        key = redis_wait.within(deadline, "to read the carry key", secret)
    except errors.RedisAway as exc:
        return ErrorInfo(code=exc.code, message=str(exc))
    opened = carry_seal.opened(job_id, raw, key)
    if opened is None:
        log.warning("refused a forged carry job=%s", job_id)
        return FORGED
    try:
        return Carry.model_validate(opened)
    except ValueError:
        log.warning("refused a malformed carry job=%s", job_id)
        return FORGED


FORGED = ErrorInfo(code=ErrorCode.FORGED_CARRY, message="the message's carry is not sealed by a tierline worker")
