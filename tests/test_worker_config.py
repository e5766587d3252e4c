"""The worker's lifetime settings: results expire, pool processes are recycled (their
counters kept), and a visibility timeout at or below the hard limit is refused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from pydantic import ValidationError

from producers.client import submit
from tests.support import RunningWorker
from worker.metrics import read_metrics
from worker.settings import Settings

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]


@pytest.fixture(scope="module")
def recycling(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    env = {"TIERLINE_MAX_TASKS_PER_CHILD": 1, "TIERLINE_RESULT_EXPIRES_S": 600}
    with worker_factory(env=env, concurrency=1) as running:
        yield running


def test_a_pool_process_is_recycled_after_max_tasks_and_its_counts_reach_redis(recycling: RunningWorker) -> None:
    # Given a fresh pool process (this test runs first on its worker) that will run one job only
    recycling.redis.delete(recycling.keys.metrics)
    before = _children_after_recycle(recycling, previous=set())
    # When it runs one job (too soon after it started to flush counters on its own)
    assert submit([{"role": "user", "content": "One job, then a new process."}], app=recycling.app).result(
        timeout=30).ok
    # Then a new process takes its place, and the counts of the old one are in Redis
    after = _children_after_recycle(recycling, previous=before)
    assert after and not after & before
    assert read_metrics(recycling.redis, recycling.keys.metrics).get("jobs:succeeded") == 1


def _children_after_recycle(worker: RunningWorker, *, previous: set[int]) -> set[int]:
    """The worker's pool processes once they differ from `previous` (wait up to 15 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        children = set(worker.children())
        if children and children != previous:
            return children
        time.sleep(0.05)
    raise AssertionError(f"the pool processes stayed {previous}")


def test_a_stored_result_expires(recycling: RunningWorker) -> None:
    handle = submit([{"role": "user", "content": "Does this result expire?"}], app=recycling.app)
    assert handle.result(timeout=30).ok
    ttl = recycling.redis.ttl(recycling.app.backend.get_key_for_task(handle.id))
    assert 0 < ttl <= 600


def test_a_visibility_timeout_not_above_the_hard_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s must be greater than hard_time_limit_s"):
        Settings(redis_url="redis://localhost", hard_time_limit_s=150, visibility_timeout_s=150)

