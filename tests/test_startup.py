"""Start-up: a worker that cannot route exits non-zero before it consumes anything, a
plain worker consumes every tierline queue, and `tierline worker` is the Celery worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import redis

from contract.names import QUEUE_CONVERSATIONS
from producers.client import producer_app_for, submit
from producers.extraction import submit_extraction
from tests.support import ROOT, RunningWorker, worker_env
from worker.settings import Settings

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
HELLO = [{"role": "user", "content": "Is anybody there?"}]


def _plain_celery_worker(url: str, env: dict[str, object]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "celery", "-A", "worker", "worker", "-c", "1", "--without-mingle",
               "--without-gossip", "--loglevel=INFO"]
    return subprocess.run(command, env=worker_env(url, "startup:", env), cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"TIERLINE_CATALOG_PATH": "{tmp}/bad.toml"}, "bad.toml"),
        ({"TIERLINE_PROVIDER_MODE": "real"}, "no model of the catalog can be called"),
        ({"TIERLINE_SOFT_TIME_LIMIT_S": 60, "TIERLINE_HARD_TIME_LIMIT_S": 30},
         "hard_time_limit_s must be greater than soft_time_limit_s"),
    ],
    ids=["bad-catalog", "no-callable-model", "bad-settings"],
)
def test_a_plain_celery_worker_that_cannot_route_exits_before_consuming(
    idle_db_url: str, tmp_path: Path, env: dict[str, object], problem: str
) -> None:
    # Given a job waiting on the queue, and a worker configuration that cannot route it
    (tmp_path / "bad.toml").write_text("[[tiers]]\nname = 'small'\nmax_tokens = 'many'\n")
    env = {k: str(v).format(tmp=tmp_path) for k, v in env.items()}
    submit(HELLO, app=producer_app_for(idle_db_url, idle_db_url), job_id="waits-for-a-good-worker")
    # When `celery -A worker worker` starts
    done = _plain_celery_worker(idle_db_url, env)
    # Then it exits non-zero, names the problem, and the job is still queued
    assert done.returncode != 0, done.stderr[-2000:]
    assert problem in done.stdout + done.stderr
    assert redis.Redis.from_url(idle_db_url).llen(QUEUE_CONVERSATIONS) == 1


def test_a_worker_without_q_consumes_every_tierline_queue(worker_factory: WorkerFactory) -> None:
    with worker_factory(queues=None) as worker:
        extraction = submit_extraction("Acme owes 12 euros.", {"type": "object"}, app=worker.app)
        conversation = submit(HELLO, app=worker.app)
        assert extraction.result(timeout=30).ok
        assert conversation.result(timeout=30).ok


def test_sigterm_to_tierline_worker_stops_the_celery_worker(idle_db_url: str, tmp_path: Path) -> None:
    # Given `tierline worker` on a user's Redis, consuming
    env = worker_env(idle_db_url, "exec:", {})
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "tierline"), "worker", "-c", "1"],
                                   env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    app = producer_app_for(idle_db_url, idle_db_url)
    try:
        assert submit(HELLO, app=app).result(timeout=60).ok
        # Then the process is the Celery worker itself (exec), and SIGTERM stops it, pool and all
        assert "celery" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        children = _children(process.pid)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_the_visibility_timeout_follows_the_hard_limit_unless_set() -> None:
    assert Settings(redis_url="redis://x", hard_time_limit_s=150).visibility_s == 180
    assert Settings(redis_url="redis://x", soft_time_limit_s=3, hard_time_limit_s=5).visibility_s == 15
    assert Settings(redis_url="redis://x", hard_time_limit_s=600).visibility_s == 720
    assert Settings(redis_url="redis://x", visibility_timeout_s=7200).visibility_s == 7200


def test_compose_gives_a_worker_more_time_to_stop_than_the_hard_limit() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    grace = re.search(r"stop_grace_period: (\d+)([sm])", compose)
    assert grace is not None
    seconds = int(grace[1]) * {"s": 1, "m": 60}[grace[2]]
    assert seconds > Settings(redis_url="redis://x").hard_time_limit_s
    assert '"-Q"' not in compose
    assert 'profiles: ["rabbitmq"]' in compose
