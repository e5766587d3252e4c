"""`tierline.shadow`: call the shadow model for a job already answered, record the comparison.

Sent by `tierline.complete` for the share of jobs live control shadows; it stores no
result (its answer never reaches a producer) and never re-queues.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from contract.schemas import Carry, ErrorInfo, parse_job
from worker import quality
from worker.celery import app
from worker.errors import InvalidJob
from worker.job_metrics import shadow_batch
from worker.plan import Candidate, Plan
from worker.record import JobRecord, Ladder
from worker.runtime import Runtime, runtime
from worker.shadow import TASK_SHADOW, LiveSide, ShadowOutcome, record_shadow

log = logging.getLogger(__name__)


@app.task(name=TASK_SHADOW, bind=True, ignore_result=True)
def shadow(self: Task, **kwargs: Any) -> None:
    """Shadow the job in ``kwargs["job"]`` on ``kwargs["model"]``; ``kwargs["live"]`` is the
    live side (`LiveSide`)."""
    rt = runtime()
    model = str(kwargs.get("model"))
    try:
        live = LiveSide.model_validate(kwargs.get("live"))
        outcome = run_shadow(rt, kwargs, model)
    except (InvalidJob, ValueError) as exc:
        log.warning("shadow job=%s not run: %s", kwargs.get("job_id"), exc)
        return
    if outcome is None:
        log.warning("shadow model=%s is not in this worker's catalog", model)
        return
    record_shadow(rt.redis, rt.settings.keys, model, live, outcome)
    rt.metrics.add_later(lambda: shadow_batch(model, live, outcome))  # the report's window of it
    rt.flush_metrics()


def run_shadow(rt: Runtime, payload: dict[str, Any], model: str) -> ShadowOutcome | None:
    """Call `model` once for the job in `payload` and judge its answer; None when `model` is
    not in this worker's catalog."""
    found = rt.router.catalog.model(model)
    if found is None:
        return None
    tier, spec = found
    job = parse_job(payload["job"])
    tier_spec = rt.router.catalog.tiers[tier]
    candidate = Candidate(tier=tier, tier_name=tier_spec.name, model=spec, timeout_s=tier_spec.timeout_s)
    record = JobRecord(f"shadow-{payload.get('job_id', '')}", Carry(started_at=time.time()), deadline=rt.deadline())
    started = time.monotonic()
    generated = rt.router.generate(job, Plan((candidate,)), record, Ladder())
    latency_ms = (time.monotonic() - started) * 1000
    cost = sum(a.cost_usd for a in record.carry.attempts)
    if isinstance(generated, ErrorInfo):
        return ShadowOutcome(False, True, cost, latency_ms)
    return ShadowOutcome(quality.check(generated.response.content, job.quality).ok, False, cost, latency_ms)
