"""`tierline.shadow`: call the shadow model for a job already answered, record the comparison.

Sent by `tierline.complete` for the share of jobs live control shadows; it stores no
result (its answer never reaches a producer) and never re-queues.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from worker.celery import app
from worker.errors import InvalidJob
from worker.runtime import runtime
from worker.shadow import TASK_SHADOW, LiveSide, record_shadow, run_shadow

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
    rt.flush_metrics()
