"""Recycling under gevent: past its job limit a worker shuts down warm (its running jobs
finish and store their results) and exits 0, for its supervisor to start a new one."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from producers.client import submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script
from worker.recycle import should_recycle

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]


def test_a_gevent_worker_past_its_job_limit_shuts_down_warm(worker_factory: WorkerFactory) -> None:
    # Given a gevent worker of 2 slots that recycles after 2 jobs a slot
    with worker_factory(env={"TIERLINE_MAX_TASKS_PER_CHILD": 2}, pool="gevent", concurrency=2) as worker:
        worker.script(Script(default=Behaviour(latency_ms=300)))
        # When it runs 5 jobs
        handles = [submit([{"role": "user", "content": f"recycle {i}"}], app=worker.app) for i in range(5)]
        # Then the first 4 end succeeded, and it exits 0 on its own, saying why
        results = [h.result(timeout=30) for h in handles[:4]]
        assert all(r.ok for r in results)
        assert worker.process.wait(timeout=30) == 0
        assert "recycling this worker: 4 jobs run (limit 4)" in worker.log()
        # And the job it did not take waits on the queue for the next worker
        assert not handles[4].done() or handles[4].result(timeout=1).ok


def test_the_recycling_decision() -> None:
    assert should_recycle(3, 4, 100.0, None) is None
    assert should_recycle(4, 4, 100.0, None) == "4 jobs run (limit 4)"
    assert should_recycle(1, 4, 900.0, 512) == "resident memory 900 MB (limit 512 MB)"
    assert should_recycle(1, 4, 300.0, 512) is None
