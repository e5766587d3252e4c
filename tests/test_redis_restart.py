"""Redis restarts mid-run: the append-only file keeps the queue, every job still ends."""

from __future__ import annotations

import time
from pathlib import Path

from operators.embedded import PrivateRedis
from producers.client import submit
from tests.support import RunningWorker, running_worker
from worker.providers.simulated import Behaviour, Script


def jobs_running(worker: RunningWorker, *, timeout_s: float = 30) -> set[str]:
    """The ids of the jobs the worker is running, as soon as there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        active = worker.app.control.inspect(destination=[worker.name], timeout=0.5).active() or {}
        running = {task["id"] for task in active.get(worker.name) or []}
        if running:
            return running
    raise AssertionError("no job started")


def test_every_job_ends_once_when_redis_restarts_mid_run(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    env = {"TIERLINE_SOFT_TIME_LIMIT_S": 6, "TIERLINE_HARD_TIME_LIMIT_S": 8, "TIERLINE_VISIBILITY_TIMEOUT_S": 10}
    try:
        with running_worker(server.url, 1, tmp_path / "logs", env=env, concurrency=2) as worker:
            worker.script(Script(default=Behaviour(latency_ms=1_000)))
            server.redis_fsync()
            sent_at = time.time()
            handles = [submit([{"role": "user", "content": f"job {i}"}], app=worker.app, job_id=f"restart-{i}")
                       for i in range(10)]
            # When Redis goes down while the worker runs some of them
            running = jobs_running(worker)
            down_at = time.time()
            server.restart()
            results = {h.id: h.result(timeout=60) for h in handles}
    finally:
        server.stop()
    # Then every job ends once, succeeded
    assert sorted(results) == sorted(f"restart-{i}" for i in range(10))
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert not failed, failed
    # And a job was in flight across the restart: running before it, and (started no
    # earlier than it was sent) still running when Redis went down.
    across = [job for job in running if sent_at + results[job].latency_ms / 1000 > down_at]
    assert across, (running, down_at - sent_at, {j: results[j].latency_ms for j in running})


def test_a_redis_outage_of_a_minute_fails_no_job(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    # Under gevent a result's write (retried while Redis is away) runs inside the job's hard
    # limit: the limits here are above the outage, as the defaults (120 / 150 s) are.
    env = {"TIERLINE_SOFT_TIME_LIMIT_S": 90, "TIERLINE_HARD_TIME_LIMIT_S": 100}
    try:
        with running_worker(server.url, 1, tmp_path / "logs", env=env, concurrency=4, pool="gevent") as worker:
            worker.script(Script(default=Behaviour(latency_ms=1_000)))
            server.redis_fsync()
            handles = [submit([{"role": "user", "content": f"outage {i}"}], app=worker.app, job_id=f"outage-{i}")
                       for i in range(12)]
            # Given jobs in flight (their leases are taken)
            client = worker.redis
            deadline = time.monotonic() + 30
            while not any(True for _ in client.scan_iter(f"{worker.prefix}lease:*")) and time.monotonic() < deadline:
                time.sleep(0.05)
            in_flight = [k.decode() for k in client.scan_iter(f"{worker.prefix}lease:*")]
            assert in_flight
            client.close()
            # When Redis is down for a minute, then back on its files
            server.stop()
            time.sleep(60)  # the outage itself
            server.start()
            results = {h.id: h.result(timeout=180) for h in handles}
    finally:
        server.stop()
    # Then every job ended succeeded, those in flight at the outage included
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert not failed, failed
    assert sorted(results) == sorted(f"outage-{i}" for i in range(12))
    assert {k.split(":")[-2] for k in in_flight} <= set(results)
