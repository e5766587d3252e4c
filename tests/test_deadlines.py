"""Every pool keeps every deadline: prefork, gevent and threads end a job that hangs past
the soft limit as one failed `out_of_time` JobResult, the cut-short call listed; a call the
hard limit stops (prefork: its process killed, gevent: in its greenlet) is listed as such."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from contract.names import TASK_COMPLETE
from producers.client import job_handle, submit
from tests.catalogs import GPT_4O_MINI, MISTRAL_SMALL, Tier, catalog_toml
from tests.llm_server import LLMServer
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
HELLO = [{"role": "user", "content": "Will this call ever end?"}]
LIMITS = {"TIERLINE_SOFT_TIME_LIMIT_S": 2, "TIERLINE_HARD_TIME_LIMIT_S": 4}


@pytest.mark.parametrize("pool", ["prefork", "gevent", "threads"])
def test_a_call_that_ignores_its_timeout_ends_as_timeout_on_every_pool(
    worker_factory: WorkerFactory, pool: str
) -> None:
    with worker_factory(env=LIMITS, pool=pool, concurrency=4) as worker:
        # Given the small model hangs past its timeout, and medium answers at once
        worker.script(Script(models={"mistral-small-latest": Behaviour(latency_ms=30_000, honours_timeout=False)}))
        started = time.monotonic()
        # When a small job and a medium job run side by side
        hung = submit(HELLO, app=worker.app)
        fine = submit(HELLO, app=worker.app, min_tier="medium")
        result = hung.result(timeout=30)
        elapsed = time.monotonic() - started
        # Then the hung one ends as a timeout at the soft limit, its call listed as interrupted
        assert result.status == "failed" and result.error is not None, result
        assert result.error.code == "out_of_time" and "soft time limit" in result.error.message
        assert [(a.model, a.outcome, a.error_code) for a in result.attempts] == [
            ("mistral-small-latest", "interrupted", "soft_time_limit")]
        assert elapsed < 4, elapsed  # before the hard limit
        # And the other job was not held up, and the worker lives on
        assert fine.result(timeout=30).ok
        worker.script(Script())
        assert submit(HELLO, app=worker.app).result(timeout=30).ok
        assert worker.process.poll() is None


def test_a_call_that_blocks_its_prefork_process_ends_at_the_hard_limit_with_its_attempts(
    worker_factory: WorkerFactory,
) -> None:
    # Hard limit past the first heartbeat (5 s), so the journal holds the call in flight.
    limits = {"TIERLINE_SOFT_TIME_LIMIT_S": 2, "TIERLINE_HARD_TIME_LIMIT_S": 7}
    with worker_factory(env=limits, pool="prefork", concurrency=2) as worker:
        # Given the small model's call is stuck in native code: the soft limit cannot reach it
        worker.script(Script(models={"mistral-small-latest": Behaviour(
            latency_ms=60_000, honours_timeout=False, blocks_process=True)}))
        started = time.monotonic()
        # When a small job runs into it
        result = submit(HELLO, app=worker.app).result(timeout=40)
        elapsed = time.monotonic() - started
        # Then the hard limit stops its process, and the job still ends as one failed
        # JobResult listing the call its journal recorded
        assert result.status == "failed" and result.error is not None, result
        assert result.error.code == "out_of_time" and "hard time limit" in result.error.message, (
            result.error, worker.log()[-8000:])
        assert [(a.model, a.outcome, a.error_kind, a.error_code) for a in result.attempts] == [
            ("mistral-small-latest", "interrupted", "budget", "hard_time_limit")]
        assert worker.app.backend.get_task_meta(result.job_id)["status"] == "FAILURE"  # Flower's Failed
        assert 7 <= elapsed < 30, elapsed
        # And the worker replaced the killed process and goes on
        worker.script(Script())
        assert submit(HELLO, app=worker.app).result(timeout=30).ok
        assert worker.process.poll() is None


def test_a_call_cut_short_by_the_hard_limit_under_gevent_is_listed_as_cut_by_the_hard_limit(
    worker_factory: WorkerFactory,
) -> None:
    # A message may carry its own hard limit (Celery's `time_limit` option): one below the
    # worker's soft limit lets Celery's gevent hard limit land while the call is under way.
    limits = {"TIERLINE_SOFT_TIME_LIMIT_S": 20, "TIERLINE_HARD_TIME_LIMIT_S": 25}
    with worker_factory(env=limits, pool="gevent", concurrency=4) as worker:
        # Given the small model hangs past its timeout
        worker.script(Script(models={"mistral-small-latest": Behaviour(latency_ms=30_000, honours_timeout=False)}))
        started = time.monotonic()
        # When a job whose message sets a hard limit of 2 s runs into it
        worker.app.send_task(TASK_COMPLETE, kwargs={"job": {"messages": HELLO}}, task_id="hard-cut", time_limit=2)
        result = job_handle("hard-cut", app=worker.app).result(timeout=30)
        # Then the hard limit ends it as one failed JobResult, the call listed as cut by the hard limit
        assert result.status == "failed" and result.error is not None, result
        assert result.error.code == "out_of_time" and "hard time limit" in result.error.message, (
            result.error, worker.log()[-8000:])
        assert [(a.model, a.outcome, a.error_kind, a.error_code) for a in result.attempts] == [
            ("mistral-small-latest", "interrupted", "budget", "hard_time_limit")]
        assert result.attempts[0].latency_ms >= 1_500 and time.monotonic() - started < 20  # before the soft limit
        # And the worker goes on
        worker.script(Script())
        assert submit(HELLO, app=worker.app).result(timeout=30).ok



@pytest.mark.parametrize("provider", ["openai", "mistral"])
@pytest.mark.parametrize("pool", ["prefork", "gevent", "threads"])
def test_a_call_cut_by_the_jobs_deadline_ends_it_out_of_time_and_flags_no_model(
    worker_factory: WorkerFactory, llm_server: LLMServer, tmp_path: Path, pool: str, provider: str
) -> None:
    # Given a real SDK call that would outlast the job's deadline (its tier's timeout is longer)
    model = {"openai": GPT_4O_MINI, "mistral": MISTRAL_SMALL}[provider]
    catalog = tmp_path / "slow.toml"
    catalog.write_text(catalog_toml(Tier("small", (model,), timeout_s=30.0)))
    env = {**LIMITS, "TIERLINE_MISTRAL_BASE_URL": llm_server.url, "TIERLINE_OPENAI_BASE_URL": f"{llm_server.url}/v1",
           "TIERLINE_CATALOG_PATH": str(catalog), "MISTRAL_API_KEY": "sk-test-m", "OPENAI_API_KEY": "sk-test-o"}
    llm_server.reset()
    llm_server.slow(model.name, 10.0)
    with worker_factory(env=env, pool=pool, concurrency=2) as worker:
        worker.redis.delete(worker.keys.busy(model.name))
        # When the call is given only the time the job has left, and runs out of it
        result = submit(HELLO, app=worker.app).result(timeout=30)
        # Then the job ends out of time with that call cut short by its time limit, and the
        # model is not flagged busy: it did not fail, the job ran out of time
        assert result.error is not None and result.error.code == "out_of_time", result
        assert [(a.model, a.outcome, a.error_code) for a in result.attempts] == [
            (model.name, "interrupted", "soft_time_limit")]
        assert worker.redis.get(worker.keys.busy(model.name)) is None
    llm_server.reset()
