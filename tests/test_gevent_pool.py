"""A high-concurrency gevent pool needs configuration only: no code change."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from producers.client import submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]


def test_gevent_pool_runs_many_slow_jobs_at_once(worker_factory: WorkerFactory) -> None:
    with worker_factory(pool="gevent", concurrency=100) as worker:
        worker.script(Script(default=Behaviour(latency_ms=500)))
        started = time.monotonic()
        handles = [submit([{"role": "user", "content": f"question {i}"}], app=worker.app) for i in range(150)]
        results = [h.result(timeout=60) for h in handles]
        elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["succeeded"] * 150
    # 150 calls of 0.5 s each: one at a time would take 75 s.
    assert elapsed < 15, elapsed
