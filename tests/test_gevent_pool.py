"""A high-concurrency gevent pool needs configuration only: no code change."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from producers.client import submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]


def most_active_at_once(worker: RunningWorker, *, want: int, timeout_s: float) -> int:
    """Poll the worker's active-task list until `want` jobs run at once, or the deadline."""
    seen = 0
    deadline = time.monotonic() + timeout_s
    while seen < want and time.monotonic() < deadline:
        active = worker.app.control.inspect(destination=[worker.name], timeout=1.0).active() or {}
        seen = max(seen, len(active.get(worker.name, [])))
    return seen


def test_gevent_pool_runs_many_slow_jobs_at_once(worker_factory: WorkerFactory) -> None:
    with worker_factory(pool="gevent", concurrency=100) as worker:
        # Slow enough that the jobs of one wave are all still running when the worker is asked.
        worker.script(Script(default=Behaviour(latency_ms=8_000)))
        handles = [submit([{"role": "user", "content": f"question {i}"}], app=worker.app) for i in range(150)]
        at_once = most_active_at_once(worker, want=100, timeout_s=60)
        results = [h.result(timeout=120) for h in handles]
    # One process with dozens of calls in flight (a prefork pool runs one per process); not
    # necessarily all 100 at the same instant on a loaded machine, as the first wave ends.
    assert at_once >= 75, at_once
    assert [r.status for r in results] == ["succeeded"] * 150
