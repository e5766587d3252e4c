"""One delivery of a job message, the same for every task: the task boundary.

Read the payload, parse it, count this delivery (one Redis round trip that also reads
the busy flags), answer a redelivered job from its stored result or fail a job whose
worker keeps dying, run it, and turn every failure into one failed JobResult.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from contract import job_identity
from contract.codes import ErrorCode
from contract.names import TASK_COMPLETE, TASK_EXTRACT
from contract.schemas import Attempt, ErrorInfo, JobResult
from results import store_for
from worker import errors, limits, series
from worker.record import JobRecord
from worker.runtime import Runtime
from worker.state import Snapshot

log = logging.getLogger(__name__)

J = TypeVar("J")
D = TypeVar("D")
T = TypeVar("T")

LEASE_POLL_S = 0.5  # how often a redelivery checks on the copy of its job running elsewhere


def deliver(
    task: Task, rt: Runtime, record: JobRecord, args: tuple[Any, ...], kwargs: dict[str, Any],
    *, parse: Callable[[object], J], run: Callable[[J, frozenset[str]], D],
) -> D | JobResult:
    """Parse the message's job with `parse` and `run` it with the busy models, once."""
    try:
        payload = job_payload(args, kwargs)
        if task.name in (TASK_COMPLETE, TASK_EXTRACT):  # a chunk's payload is not its job's
            record.fingerprint = job_identity.fingerprint(payload)
        # A redelivered message is counted before it is read again: one whose reading killed
        # its process ends `worker_lost` after max deliveries instead of coming back forever.
        # A first delivery is read (limits first) before anything is written.
        early = _counted(task, rt, record, lease=False) if _redelivered(task) else None
        if early is not None and early[1] is not None:
            return early[1]
        job = parse(_within_limits(payload, rt))
        _check_tenant(record.job_id, payload)
        snapshot, earlier = early or _counted(task, rt, record, lease=True)
        if earlier is not None:
            return earlier
        rt.inflight.begin(record, leased=snapshot.leased)
        try:
            return run(job, snapshot.busy)
        finally:
            rt.inflight.end(record)
            rt.job_done()
    except errors.InvalidJob as exc:
        log.warning("invalid job job=%s code=%s: %s", record.job_id, exc.code, exc)
        return rt.router.failed(record, ErrorInfo(code=exc.code, message=str(exc)))
    except SoftTimeLimitExceeded:
        log.warning("soft time limit job=%s attempts=%d", record.job_id, len(record.carry.attempts))
        return rt.router.interrupted(record, "the job hit the soft time limit", cut_by=ErrorCode.SOFT_TIME_LIMIT)
    except rt.hard_limit_errors:  # gevent: Celery's hard limit, raised in this greenlet
        log.error("hard time limit job=%s attempts=%d", record.job_id, len(record.carry.attempts))
        return rt.router.interrupted(record, "the job hit the hard time limit", cut_by=ErrorCode.HARD_TIME_LIMIT)
    except Exception as exc:  # the task boundary: a bug still ends as one failed JobResult
        log.exception("internal error job=%s", record.job_id)
        return rt.router.interrupted(record, f"internal error: {type(exc).__name__}",
                                     cut_by=ErrorCode.INTERNAL_ERROR, code=ErrorCode.INTERNAL_ERROR)


def _redelivered(task: Task) -> bool:
    return bool((task.request.delivery_info or {}).get("redelivered"))


def _counted(task: Task, rt: Runtime, record: JobRecord, *, lease: bool) -> tuple[Snapshot, JobResult | None]:
    """Count this delivery (reading the busy flags in the same call) and what to answer instead
    of running, if anything. `lease`: the job runs next unless answered otherwise, so a first
    delivery takes its lease in the same call (a read made before the job is parsed takes none)."""
    snapshot = rt.state.read(rt.catalog.model_names, job_id=record.job_id, level=record.carry.level,
                             lease=rt.inflight.lease if lease else None)
    rt.metrics.count(series.DELIVERIES, (task.name, delivery_label(snapshot.delivery)))
    return snapshot, _earlier(task, rt, record, snapshot.delivery)


def _check_tenant(job_id: str, payload: object) -> None:
    tenant = payload.get("tenant") if isinstance(payload, dict) else None
    problem = job_identity.tenant_problem(job_id, tenant)
    if problem is not None:
        raise errors.InvalidJob(problem, code=ErrorCode.TENANT_MISMATCH)


def _within_limits(payload: object, rt: Runtime) -> object:
    """`payload` unchanged when it is within the worker's limits; InvalidJob with the code of the
    first limit it crosses (before it is validated, counted or written anywhere)."""
    breach = limits.breach(payload, rt.settings.limits)
    if breach is not None:
        raise breach
    return payload


def delivery_label(delivery: int) -> str:
    """A bounded label for a delivery number: 1, 2, 3, 4+ (0, unknown: Redis did not answer)."""
    if delivery <= 0:
        return "unknown"
    return str(delivery) if delivery < 4 else "4+"


def count_overhead(rt: Runtime, task: Task, started: float, attempts: Sequence[Attempt]) -> None:
    """Record this delivery's time outside model calls; `attempts`: the calls it made."""
    calls_s = sum(a.latency_ms for a in attempts) / 1000
    rt.metrics.observe(series.ROUTING_OVERHEAD, (task.name,), max(0.0, time.monotonic() - started - calls_s))


def finishing(rt: Runtime, job_id: str, step: Callable[[], T]) -> T:
    """Run `step`, the task's last one (store or re-queue the decision), to its end.

    A job whose attempts end just before the soft time limit can still be hit by it
    while its decision is being recorded; the task would then end as an exception and
    the producer would never see the JobResult. The limit fires once per task, so the
    step runs again, uninterrupted (the hard limit is still above it). Once the step is
    over, a limit firing while Celery stores the result is let pass (`Runtime.decision_hold`).
    """
    try:
        try:
            return step()
        except SoftTimeLimitExceeded:
            log.warning("soft time limit while recording the decision job=%s: recording it again", job_id)
            return step()
    finally:
        rt.decision_hold.hold(job_id)


def _earlier(task: Task, rt: Runtime, record: JobRecord, delivery: int) -> JobResult | None:
    """What to answer instead of running again: a stored result, `duplicate`, or `worker_lost`."""
    if delivery > 1:
        stored = stored_result(task, record.job_id) or _still_running(task, rt, record)
        if stored is not None:
            if stored.fingerprint not in (None, record.fingerprint):
                # Another payload under a stored job's id: the stored result stays as it is
                # (its own producer may not have read it); this sender's handle sees that the
                # fingerprint is not its own and ends `conflict`.
                log.warning("job id reused with another payload job=%s: stored result kept", record.job_id)
                rt.metrics.incr("jobs:conflict")
            record.replayed = True  # counted in the metrics when it was stored
            return stored
        if store_for(task.backend).collected(record.job_id):
            return rt.router.failed(record, ErrorInfo(
                code=ErrorCode.DUPLICATE,
                message="this job already finished and its producer collected the result; "
                "this copy was not run",
            ))
    if delivery > rt.settings.max_deliveries:
        record.carry.attempts = _longest(record.carry.attempts, rt.inflight.journal(record.job_id))
        return rt.router.failed(record, ErrorInfo(
            code=ErrorCode.WORKER_LOST,
            message=f"delivered {delivery} times without finishing: its worker died each time",
        ))
    return None


def _still_running(task: Task, rt: Runtime, record: JobRecord) -> JobResult | None:
    """The job's result, if a live worker still runs it (its lease is held): wait for it.

    None once the lease has lapsed (its worker died: run the job here) with no result.
    """
    level = record.carry.level
    if not rt.inflight.held(record.job_id, level):
        return None
    log.warning("redelivered job=%s still runs elsewhere: waiting for its result", record.job_id)
    while rt.inflight.held(record.job_id, level) and time.monotonic() < record.deadline:
        stored = stored_result(task, record.job_id)
        if stored is not None:
            return stored
        time.sleep(LEASE_POLL_S)
    stored = stored_result(task, record.job_id)
    if stored is None and rt.inflight.held(record.job_id, level):
        return rt.router.failed(record, ErrorInfo(
            code=ErrorCode.OUT_OF_TIME, message="redelivered while the job still ran elsewhere, and that run "
            "did not finish within this delivery's time limit",
        ))
    return stored


def _longest(attempts: list[Attempt], journal: list[Attempt]) -> list[Attempt]:
    return journal if len(journal) > len(attempts) else attempts


def given_job(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    """The job as the message gives it, never refused (None when it gives none): what a
    re-queue sends on and what metrics read the team from (`job_payload` checks it)."""
    return kwargs.get("job", args[0] if args else None)


def job_payload(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    """The one job a message carries, as ``kwargs {"job": ...}`` or one positional argument."""
    if "job" in kwargs and not args and len(kwargs) == 1:
        return kwargs["job"]
    if len(args) == 1 and not kwargs:
        return args[0]
    raise errors.InvalidJob(
        f"expected one job (kwargs {{'job': ...}}), got {len(args)} positional "
        f"and keyword arguments {sorted(kwargs)}",
        code=ErrorCode.MALFORMED_MESSAGE,
    )


def stored_result(task: Task, job_id: str) -> JobResult | None:
    """The job's result if an earlier delivery already stored one (redelivery, resubmission)."""
    stored = store_for(task.backend).read([job_id]).get(job_id)
    return None if stored is None else stored.ended()
