"""Re-queue a job under its own id: a poor answer goes one tier up through the broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task

from contract.codes import ErrorCode
from contract.schemas import Carry, ErrorInfo
from worker import carry_seal, tracing
from worker.runtime import runtime

log = logging.getLogger(__name__)


def requeue(task: Task, name: str, job: object, carry: Carry) -> Any:
    """Replace `task` with task `name` (same id) on `job`, carrying the earlier generations.

    job: the job payload, untouched. Raises Celery's `Ignore` once the new message is sent.
    """
    job_id = str(task.request.id)
    # Sealed (worker/carry_seal.py): the next delivery refuses a carry it did not get from a worker.
    sealed = carry_seal.sealed(job_id, carry.model_dump(mode="json"), runtime().carry_secret)
    sig = task.app.signature(
        name, kwargs={"job": job, "carry": sealed},
        argsrepr=f"job={job_id}", kwargsrepr=escalated(carry),
        headers=tracing.context_headers(task.request),  # the next delivery continues this trace
    )
    return task.replace(sig)


def escalated(carry: Carry) -> str:
    """What Flower shows of a re-queued job: that it escalated, and along which tiers."""
    if not carry.escalations:
        return f"{{level: {carry.level}}}"
    path = "→".join([e.from_tier for e in carry.escalations] + [carry.escalations[-1].to_tier or "-"])
    return f"{{escalated: {path}, level: {carry.level}}}"


def carried(job_id: str, raw: object, secret: Callable[[], bytes]) -> Carry | None:
    """The carry a re-queued message brings (a fresh one for a first delivery); None when it
    is not sealed by a worker for `job_id`: a hand-made message may not set routed tokens,
    tier, attempts or costs.

    secret: gives the workers' carry key (`Runtime.carry_secret`), asked only when there is a
    carry to open: a first delivery makes no Redis call before its guarded delivery read
    (the first read of the shared key, failing in a Redis restart, once failed a job).
    """
    if raw is None:
        return Carry(started_at=time.time())
    opened = carry_seal.opened(job_id, raw, secret())
    if opened is None:
        log.warning("refused a forged carry job=%s", job_id)
        return None
    try:
        return Carry.model_validate(opened)
    except ValueError:
        log.warning("refused a malformed carry job=%s", job_id)
        return None


FORGED = ErrorInfo(code=ErrorCode.FORGED_CARRY, message="the message's carry is not sealed by a tierline worker")
