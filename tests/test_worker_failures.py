"""Bad input, time limits and lost workers: every job still ends as exactly one JobResult."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from kombu import Connection

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from producers.client import JobHandle, send_job, submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
MODELS = ("mistral-small-latest", "mistral-medium-latest", "mistral-large-latest")


@pytest.mark.parametrize(
    ("job", "code", "words"),
    [
        ({"messages": []}, "empty_messages", "at least 1 item"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "unknown_role", "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "non_text_content",
         "messages.0.content"),
        ({"messages": HELLO, "pin_model": "gpt-9"}, "unknown_pinned_model", "gpt-9"),
        ({"messages": HELLO, "min_tier": "huge"}, "unknown_tier", "huge"),
        ({"messages": HELLO, "temperature": 7}, "invalid_job", "temperature"),
        ({"messages": HELLO, "colour": "red"}, "invalid_job", "colour"),
        ({"messages": [{"role": "user", "content": "x " * 140_000}]}, "context_too_long", "needs"),
    ],
)
def test_bad_job_fails_with_a_clear_code(worker: RunningWorker, job: dict[str, object], code: str,
                                         words: str) -> None:
    result = send_job(job, app=worker.app).result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == code
    assert words in result.error.message
    assert result.attempts == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(["not a job"], {}), ([], {"job": 42}), ([1, 2], {}), ([], {"job": {}, "extra": True})],
)
def test_malformed_message_sent_by_hand_ends_as_failed_result(
    worker: RunningWorker, args: list[object], kwargs: dict[str, object]
) -> None:
    task = worker.app.send_task(TASK_COMPLETE, args=args, kwargs=kwargs)
    result = JobHandle(task.id, worker.app).result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code in ("invalid_job", "malformed_message")
    assert worker.redis.llen(QUEUE_CONVERSATIONS) == 0


@pytest.mark.parametrize(
    ("body", "encoding", "problem"),
    [
        ("not a task body", {"serializer": "json"}, "not a Celery task body"),
        ({"job": {"messages": HELLO}}, {"serializer": "json"}, "not a Celery task body"),
        ([[], {"job": {"messages": HELLO}}], {"serializer": "json"}, "not a Celery task body"),
        (b"{not json", {"content_type": "application/json", "content_encoding": "utf-8"}, "not valid JSON"),
        ([[], {"job": {"messages": HELLO}}, {}], {"serializer": "pickle"}, "JSON only"),
    ],
    ids=["string", "object", "two-items", "not-json", "pickle"],
)
def test_a_malformed_envelope_ends_as_a_failed_result_and_the_worker_lives_on(
    worker: RunningWorker, body: object, encoding: dict[str, str], problem: str
) -> None:
    # Given a message on the queue by hand, with a task name and an id but a bad body
    job_id = f"envelope-{uuid.uuid4()}"
    with Connection(worker.url) as conn:
        conn.Producer().publish(body, routing_key=QUEUE_CONVERSATIONS,
                                headers={"task": TASK_COMPLETE, "id": job_id, "lang": "py"}, **encoding)
    # Then the job ends as one failed result that says why
    result = JobHandle(job_id, worker.app).result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "malformed_message" and problem in result.error.message
    # And the worker lives on, with nothing left on the queue
    assert submit(HELLO, app=worker.app).result(timeout=30).ok
    assert worker.process.poll() is None
    assert worker.redis.llen(QUEUE_CONVERSATIONS) == 0


def test_a_message_without_a_task_id_is_dropped_and_the_worker_lives_on(worker: RunningWorker) -> None:
    with Connection(worker.url) as conn:
        conn.Producer(serializer="json").publish(
            [[], {"job": {"messages": HELLO}}, {}], routing_key=QUEUE_CONVERSATIONS,
            headers={"task": TASK_COMPLETE, "lang": "py"},
        )
    assert submit(HELLO, app=worker.app).result(timeout=30).ok
    assert "the message has no task id" in worker.log()
    assert worker.redis.llen(QUEUE_CONVERSATIONS) == 0


def test_flower_and_logs_see_a_summary_not_the_conversation(worker: RunningWorker) -> None:
    secret = "my account number is 12345678"
    handle = submit([{"role": "user", "content": secret}], app=worker.app)
    assert handle.result(timeout=30).ok
    events = worker.redis.lrange(QUEUE_CONVERSATIONS, 0, -1)  # consumed already
    assert events == []
    assert secret not in worker.log()


@pytest.fixture(scope="module")
def slow_worker(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    env = {"TIERLINE_SOFT_TIME_LIMIT_S": 2, "TIERLINE_HARD_TIME_LIMIT_S": 4}
    with worker_factory(env=env, concurrency=1) as running:
        yield running


@pytest.fixture()
def unflagged(slow_worker: RunningWorker) -> RunningWorker:
    """The slow worker with no model flagged busy by an earlier test."""
    slow_worker.redis.delete(*[slow_worker.keys.busy(m) for m in MODELS])
    return slow_worker


def test_an_attempt_is_cut_to_the_time_left_and_the_job_ends_as_a_timeout(unflagged: RunningWorker) -> None:
    slow_worker = unflagged
    # Given every model answers in 30 s, and a soft limit of 2 s
    slow_worker.script(Script(default=Behaviour(latency_ms=30_000)))
    started = time.monotonic()
    # When a job runs
    result = submit(HELLO, app=slow_worker.app).result(timeout=30)
    # Then its one attempt is given the time left, and the job ends as a timeout listing it as
    # cut short by the time limit: the model did not fail and is not flagged busy
    assert time.monotonic() - started < 10  # soft limit 2 s; generous for a loaded CI machine
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "out_of_time" and "ran out of time" in result.error.message
    assert [(a.model, a.outcome, a.error_code) for a in result.attempts] == [
        ("mistral-small-latest", "interrupted", "soft_time_limit")]
    assert result.attempts[0].latency_ms < 2_000  # cut to the time left, not its tier's 20 s timeout
    assert slow_worker.redis.get(slow_worker.keys.busy("mistral-small-latest")) is None
    # The worker lives on.
    slow_worker.script(Script())
    assert submit(HELLO, app=slow_worker.app).result(timeout=30).ok


def test_a_call_that_hangs_past_the_soft_limit_is_listed_as_interrupted(unflagged: RunningWorker) -> None:
    slow_worker = unflagged
    # Given a model whose calls hang past their timeout (only the soft limit stops them)
    slow_worker.script(Script(default=Behaviour(latency_ms=30_000, honours_timeout=False)))
    # When a job runs
    result = submit(HELLO, app=slow_worker.app).result(timeout=30)
    # Then the soft limit ends it as a timeout, the cut-short call listed
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "out_of_time" and "soft time limit" in result.error.message
    assert [(a.model, a.outcome, a.error_code) for a in result.attempts] == [
        ("mistral-small-latest", "interrupted", "soft_time_limit")]
    slow_worker.script(Script())
    assert submit(HELLO, app=slow_worker.app).result(timeout=30).ok


def test_a_call_a_worker_fault_cuts_short_is_listed_as_an_internal_error(worker: RunningWorker) -> None:
    # Given a provider that fails outside the error tree mid-call: the simulator's script
    # in Redis is not a script (its read raises a validation error, not a ProviderError)
    with worker.redis as client:
        client.set(worker.keys.sim_script, b"{not a script")
    try:
        # When a job runs
        result = submit(HELLO, app=worker.app).result(timeout=30)
    finally:
        worker.script(Script())
    # Then it ends as one failed internal_error JobResult, the call it was making listed as
    # cut short by that fault (not by a time limit)
    assert result.status == "failed" and result.error is not None, result
    assert result.error.code == "internal_error" and "ValidationError" in result.error.message, result.error
    assert [(a.model, a.outcome, a.error_kind, a.error_code) for a in result.attempts] == [
        ("mistral-small-latest", "interrupted", "internal", "internal_error")]
    assert submit(HELLO, app=worker.app).result(timeout=30).ok


@pytest.fixture(scope="module")
def killable_worker(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    with worker_factory(concurrency=1) as running:
        running.script(Script(default=Behaviour(latency_ms=3_000)))
        yield running


def test_killed_worker_process_redelivers_the_job_to_one_result(killable_worker: RunningWorker) -> None:
    handle = submit(HELLO, app=killable_worker.app, job_id="kill-me-once")
    _kill_child_when_busy(killable_worker, "kill-me-once", set())
    killable_worker.script(Script())
    result = handle.result(timeout=30)
    assert result.ok, result.error
    assert killable_worker.redis.get(killable_worker.keys.deliveries("kill-me-once", 0)) == b"2"


def test_job_that_keeps_killing_its_worker_fails_as_worker_lost(killable_worker: RunningWorker) -> None:
    killable_worker.script(Script(default=Behaviour(latency_ms=3_000)))
    handle = submit(HELLO, app=killable_worker.app, job_id="poison")
    killed: set[int] = set()
    for _ in range(3):
        _kill_child_when_busy(killable_worker, "poison", killed)
    result = handle.result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "worker_lost", result.error
    assert killable_worker.redis.get(killable_worker.keys.deliveries("poison", 0)) == b"4"


def _kill_child_when_busy(worker: RunningWorker, job_id: str, killed: set[int]) -> None:
    """SIGKILL the pool process running the job (a fresh one each time) once this delivery
    of it is counted in Redis: the job is past its delivery step, inside the router."""
    deadline = time.monotonic() + 15
    counted = str(len(killed) + 1).encode()
    while time.monotonic() < deadline:
        active = worker.app.control.inspect(destination=[worker.name], timeout=0.5).active() or {}
        pids = [t["worker_pid"] for t in active.get(worker.name) or [] if t["worker_pid"] not in killed]
        if pids and worker.redis.get(worker.keys.deliveries(job_id, 0)) == counted:
            os.kill(pids[0], signal.SIGKILL)
            killed.add(pids[0])
            return
        time.sleep(0.05)
    raise AssertionError("the job never became active")

