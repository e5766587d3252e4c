"""A dead worker's jobs come back within the visibility timeout the hard limit sets, and a
job still running elsewhere is not run a second time when its message comes back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import redis

from producers.client import send_job, submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script
from worker.settings import Settings

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
LIMITS = {"TIERLINE_SOFT_TIME_LIMIT_S": 4, "TIERLINE_HARD_TIME_LIMIT_S": 5}


def _leases(client: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in client.scan_iter(f"{prefix}lease:*"))


def test_sigkill_of_a_whole_worker_then_a_new_one_ends_every_job_once(worker_factory: WorkerFactory) -> None:
    visibility_s = Settings(redis_url="redis://x", soft_time_limit_s=4, hard_time_limit_s=5).visibility_s
    with worker_factory(env=LIMITS, pool="gevent", concurrency=10) as first:
        first.script(Script(default=Behaviour(latency_ms=1_000)))
        handles = [submit([{"role": "user", "content": f"drill {i}"}], app=first.app, job_id=f"drill-{i}")
                   for i in range(20)]
        # Given every slot busy (each job holds a lease). Not before: kombu's Redis transport
        # pops a message with BRPOP before it records it as unacknowledged, and a worker
        # killed between the two loses that message (README, "Dead workers").
        deadline = time.monotonic() + 30
        while _leases(first.redis, first.prefix) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leases(first.redis, first.prefix) == 10
        # When the whole worker dies (main process and pool)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        killed_at = time.monotonic()
        in_flight = [h.id for h in handles if not h.done()]
        assert in_flight
        # And a new worker starts on the same broker
        with worker_factory(env=LIMITS, pool="gevent", concurrency=10, after=first) as second:
            results = [h.result(timeout=visibility_s + 30) for h in handles]
            elapsed = time.monotonic() - killed_at
            deliveries = [second.redis.get(second.keys.deliveries(h.id, 0)) for h in handles]
    # Then every job ends succeeded, once, within the visibility timeout (plus a sweep)
    assert [r.status for r in results] == ["succeeded"] * 20
    assert elapsed < visibility_s + 15, (elapsed, visibility_s)
    assert all(int(d or 0) <= 2 for d in deliveries), deliveries


def test_a_copy_of_a_job_still_running_elsewhere_waits_for_its_result(worker_factory: WorkerFactory) -> None:
    with worker_factory(concurrency=2) as worker:
        worker.script(Script(default=Behaviour(latency_ms=3_000)))
        job = {"messages": [{"role": "user", "content": "Run me once."}], "job_id": "run-once"}
        # Given the job runs (it holds its lease)
        first = send_job(job, app=worker.app)
        deadline = time.monotonic() + 20
        while not worker.redis.exists(worker.keys.lease("run-once", 0)) and time.monotonic() < deadline:
            time.sleep(0.05)
        # When a second copy of its message arrives (as a redelivery would)
        second = send_job(job, app=worker.app)
        # Then both see the one result, and the copy never called the provider
        one, two = first.result(timeout=30), second.result(timeout=30)
        assert one.ok and one == two
        assert len(one.attempts) == 1
        assert "redelivered job=run-once still runs elsewhere: waiting for its result" in worker.log()
        assert worker.redis.get(worker.keys.deliveries("run-once", 0)) == b"2"
