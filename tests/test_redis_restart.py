"""Redis restarts mid-run: the append-only file keeps the queue, every job still ends."""

from __future__ import annotations

import time
from pathlib import Path

from operators.embedded import PrivateRedis
from producers.client import submit
from tests.support import running_worker
from worker.providers.simulated import Behaviour, Script


def test_every_job_ends_once_when_redis_restarts_mid_run(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    env = {"TIERLINE_SOFT_TIME_LIMIT_S": 3, "TIERLINE_HARD_TIME_LIMIT_S": 5, "TIERLINE_VISIBILITY_TIMEOUT_S": 8}
    try:
        with running_worker(server.url, 0, tmp_path / "logs", env=env, concurrency=2) as worker:
            worker.script(Script(default=Behaviour(latency_ms=150)))
            server.redis_fsync()
            handles = [submit([{"role": "user", "content": f"job {i}"}], app=worker.app, job_id=f"restart-{i}")
                       for i in range(30)]
            time.sleep(0.8)
            server.restart()
            results = {h.id: h.result(timeout=60) for h in handles}
    finally:
        server.stop()
    assert sorted(results) == sorted(f"restart-{i}" for i in range(30))
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert not failed, failed
