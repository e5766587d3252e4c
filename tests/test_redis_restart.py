"""Redis restarts mid-run: the append-only file keeps the queue, every job still ends."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from contract.names import TASK_EXTRACT_CHUNK, TASK_EXTRACT_MERGE
from contract.schemas import JobResult
from operators.embedded import PrivateRedis
from producers import submit_extraction
from producers.client import producer_app_for, submit
from tests.relay import Relay
from tests.support import RunningWorker, running_worker
from tests.test_extraction_batch import CONTRACT, document, small_context_catalog
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


def jobs_in_their_call(worker: RunningWorker, *, timeout_s: float = 30) -> set[str]:
    """Jobs seen running twice, 0.3 s apart: in a call with the script's latency (a job that
    ran before its process read the script has none, and is long gone by then)."""
    deadline = time.monotonic() + timeout_s
    seen = jobs_running(worker, timeout_s=timeout_s)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = jobs_running(worker, timeout_s=timeout_s)
        if seen & now:
            return seen & now
        seen = now
    raise AssertionError("no job stayed running in its call")


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
            # When Redis goes down while the worker runs some of them, in their 1 s calls
            running = jobs_in_their_call(worker)
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
            in_flight = leased(worker, at_least=1)
            assert in_flight
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
    assert in_flight <= set(results)


SMALL = "mistral-small-latest"
OUTAGE_S = 15


@contextmanager
def escalating_worker(
    tmp_path: Path, *, pool: str, carry_key: str, soft_s: int, hard_s: int, script: Script,
) -> Iterator[tuple[PrivateRedis, RunningWorker]]:
    """A worker on a private Redis that keeps an append-only file (synced once `script` is
    set). carry_key: "shared" (the workers' key, in Redis) or "configured" (a setting)."""
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    env: dict[str, object] = {"TIERLINE_SOFT_TIME_LIMIT_S": soft_s, "TIERLINE_HARD_TIME_LIMIT_S": hard_s}
    if carry_key == "configured":
        env["TIERLINE_CARRY_SECRET"] = "k" * 64
    try:
        with running_worker(server.url, 1, tmp_path / "logs", env=env, concurrency=2, pool=pool) as worker:
            worker.script(script)
            server.redis_fsync()
            yield server, worker
    finally:
        server.stop()


def leased(worker: RunningWorker, *, at_least: int, timeout_s: float = 30, ids: str = "*") -> set[str]:
    """The ids (matching `ids`) of the jobs whose lease is taken (they run), once `at_least`
    of them are."""
    client = worker.redis
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = {k.decode()[len(worker.prefix) + 6:].rsplit(":", 1)[0]
                     for k in client.scan_iter(f"{worker.prefix}lease:{ids}")}
            if len(found) >= at_least or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)
    finally:
        client.close()


def outage(server: PrivateRedis) -> None:
    """Redis down for OUTAGE_S seconds, then back on its files."""
    server.stop()
    time.sleep(OUTAGE_S)
    server.start()


# "shared": the carry key lives in Redis and no process has read it yet, so a re-queue during
# the outage is its first read. "configured": the key is the setting, so the one thing a
# re-queue needs Redis for is publishing the next message on the broker (which, left to
# Celery, would wait inside it: under gevent its result backend first retries its
# subscription to the job's result about 20 times a second apart).
@pytest.mark.parametrize(("pool", "carry_key"), [("prefork", "shared"), ("gevent", "shared"),
                                                 ("prefork", "configured"), ("gevent", "configured")])
def test_jobs_escalating_during_a_redis_outage_end_once_at_a_stronger_tier(
    tmp_path: Path, pool: str, carry_key: str
) -> None:
    # The jobs' time (soft limit) outlasts the outage; the small tier answers poorly, so each
    # job re-queues itself once, and those in flight do so while Redis is down.
    script = Script(default=Behaviour(latency_ms=3_000), models={SMALL: Behaviour(latency_ms=3_000, poor_rate=1.0)})
    with escalating_worker(tmp_path, pool=pool, carry_key=carry_key, soft_s=40, hard_s=50, script=script) as (
        server, worker,
    ):
        handles = [submit([{"role": "user", "content": f"escalating {i}"}], app=worker.app,
                          job_id=f"escalating-{i}") for i in range(4)]
        # Given jobs in flight at the small tier, none re-queued yet: no process has read
        # the shared carry key (the first read creates it)
        in_flight = leased(worker, at_least=1)
        probe = worker.redis
        carry_key_before = probe.exists(worker.keys.carry_secret)
        probe.close()
        # When Redis is down while they escalate, then back on its files
        outage(server)
        results = {h.id: h.result(timeout=90) for h in handles}
        log = worker.log()
    assert in_flight
    assert carry_key_before == 0
    # Then every job ends once, succeeded above the small tier, its escalation listed
    assert sorted(results) == sorted(f"escalating-{i}" for i in range(4))
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert not failed, failed
    for result in results.values():
        assert result.tier != "small", result
        assert [(e.from_tier, e.to_tier) for e in result.escalations] == [("small", "medium")], result
        assert [a.model for a in result.attempts][0] == SMALL
    # And those in flight re-queued while Redis was away: they waited for it, as the step
    # that failed says (redis-py's error reading the key or checking Redis answers)
    assert in_flight <= set(results)
    assert "waiting for Redis to re-queue the job (ConnectionError)" in log, log[-3000:]


@pytest.mark.parametrize(("pool", "carry_key"), [("prefork", "shared"), ("gevent", "shared"),
                                                 ("gevent", "configured")])
def test_a_job_escalating_into_an_outage_longer_than_its_time_fails_out_of_time(
    tmp_path: Path, pool: str, carry_key: str
) -> None:
    # The job's time (soft limit, 8 s) ends while Redis is away; the hard limit is above the
    # outage, so its failed result is written once Redis is back.
    script = Script(models={SMALL: Behaviour(latency_ms=3_000, poor_rate=1.0)})
    with escalating_worker(tmp_path, pool=pool, carry_key=carry_key, soft_s=8, hard_s=40, script=script) as (
        server, worker,
    ):
        handles = [submit([{"role": "user", "content": f"late {i}"}], app=worker.app, job_id=f"late-{i}")
                   for i in range(2)]
        in_flight = leased(worker, at_least=2)
        # When Redis is away from before their escalation until past their time
        outage(server)
        results = {h.id: h.result(timeout=60) for h in handles}
    # Then each ends once, failed out of time, saying Redis was unreachable, its small attempt listed
    assert in_flight == set(results) == {"late-0", "late-1"}
    for result in results.values():
        assert not result.ok
        assert result.error is not None and result.error.code == "out_of_time", result.error
        assert "Redis was unreachable" in result.error.message, result.error
        assert [a.model for a in result.attempts] == [SMALL], result.attempts


# What the relay watches for: the first chunk message (the fan-out), or the merge's message,
# which the last chunk to finish publishes (its headers are plain JSON; the chunk messages
# carry the merge's signature too, but in their base64 body).
FAN_OUT = TASK_EXTRACT_CHUNK.encode()
MERGE = f'"task": "{TASK_EXTRACT_MERGE}"'.encode()


def fanned_out_in_an_outage(
    tmp_path: Path, job_id: str, *, soft_s: int, hard_s: int, at: bytes = FAN_OUT, outage_s: float = OUTAGE_S,
    pool: str = "prefork", cut: bool = False,
) -> tuple[JobResult, str]:
    """The JobResult of a document of several chunks that finds Redis unreachable `at` its
    fan-out or its merge's publish, and the worker's log. The worker has small contexts
    (documents fan out into chunks) and reaches Redis through a relay that watches for the
    first message carrying `at`: it drops that message with its connection, and lets no new
    connection through for `outage_s` seconds. The connections already open go on, so the
    outage meets that step and nothing else (a whole Redis restart is tested below), unless
    `cut`: then they are closed too, the worker's every connection (the producer's go to
    Redis directly)."""
    server = PrivateRedis(appendonly=False).start()
    (tmp_path / "logs").mkdir()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(small_context_catalog())
    env = {"TIERLINE_CATALOG_PATH": str(catalog), "TIERLINE_SOFT_TIME_LIMIT_S": soft_s,
           "TIERLINE_HARD_TIME_LIMIT_S": hard_s}
    dropped = threading.Event()

    def drop_first(seen: int) -> bool:
        if seen > 1:
            return False
        relay.refuse_for(outage_s)
        if cut:
            relay.cut()
        dropped.set()
        return True

    try:
        with Relay(("127.0.0.1", server.port), marker=at) as relay:
            relay.on_marker = drop_first
            with running_worker(f"redis://127.0.0.1:{relay.port}/0", 1, tmp_path / "logs", env=env,
                                pool=pool) as worker:
                direct = f"redis://127.0.0.1:{server.port}/1"  # the worker's database, not through the relay
                producer = producer_app_for(direct, direct)
                handle = submit_extraction(document(random.Random(7), 9_000), CONTRACT, app=producer,
                                           max_output_tokens=256, job_id=job_id)
                result = handle.result(timeout=90)
                assert dropped.is_set(), f"no message carried {at!r}"
                return result, worker.log()
    finally:
        server.stop()


@pytest.mark.parametrize(("at", "outage_s", "pool", "waited"), [
    (FAN_OUT, OUTAGE_S, "prefork", "waiting for Redis to fan the document out"),
    # 30 s: past Celery's claim on the chord (~20 s), which lapses while the merge waits
    (MERGE, 30, "prefork", "waiting for Redis to publish the merge"),
    # every connection of the worker cut (the merge's own result subscription was made
    # just before, so this does not reach the RuntimeError Celery's result consumer raises
    # when it cannot subscribe: `redis_wait.sending` handles that)
    (MERGE, 30, "gevent", "waiting for Redis to publish the merge"),
], ids=["fan-out", "merge-prefork", "merge-gevent"])
def test_a_document_meeting_a_redis_outage_ends_once_with_every_chunk(
    tmp_path: Path, at: bytes, outage_s: float, pool: str, waited: str
) -> None:
    # Given a document of several chunks that finds Redis unreachable well within the
    # job's time (40 s): as it fans out, or as its last chunk publishes the merge (Celery's
    # chord callback)
    result, log = fanned_out_in_an_outage(tmp_path, "outage-doc", soft_s=40, hard_s=50, at=at,
                                          outage_s=outage_s, pool=pool, cut=pool == "gevent")
    # Then, once Redis answers again, the document ends once, succeeded, each chunk called once
    assert result.ok, result.error
    assert result.job_id == "outage-doc"
    chunks = result.chunks or 0
    assert chunks >= 2, result
    assert sorted(a.chunk or 0 for a in result.attempts) == list(range(chunks))
    # after waiting for Redis (not a bare failure of the task, nor a ChordError), the merge run once
    assert waited in log, log[-3000:]
    assert log.count("extraction done job=outage-doc ") == 1, log[-3000:]


def test_a_document_fanning_out_into_an_outage_longer_than_its_time_fails_out_of_time(tmp_path: Path) -> None:
    # Given the job's time (soft limit, 6 s) ends while Redis is unreachable (the hard limit
    # is above it), so the failed result is written after the soft limit has fired
    result, log = fanned_out_in_an_outage(tmp_path, "fanning-out-late", soft_s=6, hard_s=40)
    # Then it ends once, failed out of time, saying Redis was unreachable to fan it out
    assert not result.ok
    assert result.error is not None and result.error.code == "out_of_time", result.error
    assert "Redis was unreachable to fan the document out" in result.error.message, result.error
    assert result.attempts == []
    # (the soft limit fired while Celery wrote the result, and was let pass)
    assert "soft time limit job=fanning-out-late after its decision" in log, log[-3000:]


def test_a_document_whose_merge_cannot_be_published_in_its_last_chunks_time_fails_with_the_reason(
    tmp_path: Path,
) -> None:
    # Given a document whose last chunk may wait for Redis only until its soft limit (6 s)
    # to publish the merge, and Redis away for 40 s then (the hard limit is 45 s)
    result, log = fanned_out_in_an_outage(tmp_path, "merge-late", soft_s=6, hard_s=45, at=MERGE, outage_s=40)
    # Then the document ends once, failed, saying why (Celery's chord error), before the
    # hard limit could stop the chunk in the publish and leave the document without a result
    assert not result.ok
    assert result.error is not None and result.error.code == "worker_error", result.error
    assert "Redis was unreachable to publish the merge" in result.error.message, result.error
    assert "hard time limit" not in log, log[-3000:]


def test_documents_with_chunks_in_flight_across_a_redis_restart_end_once_with_every_chunk(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(small_context_catalog())
    env = {"TIERLINE_CATALOG_PATH": str(catalog), "TIERLINE_SOFT_TIME_LIMIT_S": 40, "TIERLINE_HARD_TIME_LIMIT_S": 50}
    try:
        with running_worker(server.url, 1, tmp_path / "logs", env=env, concurrency=2) as worker:
            worker.script(Script(default=Behaviour(latency_ms=1_500)))
            server.redis_fsync()
            rng = random.Random(11)
            handles = [submit_extraction(document(rng, 9_000), CONTRACT, app=worker.app, max_output_tokens=256,
                                         job_id=f"restart-doc-{i}") for i in range(3)]
            # Given documents whose chunks are running (a chunk's lease is taken)
            assert leased(worker, at_least=1, ids="*:chunk:*"), "no chunk started"
            # When Redis is down for OUTAGE_S seconds, then back on its files
            outage(server)
            results = {h.id: h.result(timeout=180) for h in handles}
    finally:
        server.stop()
    # Then every document ends once, succeeded, each of its chunks called once
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert not failed, failed
    for result in results.values():
        chunks = result.chunks or 0
        assert chunks >= 2, result
        assert sorted(a.chunk or 0 for a in result.attempts) == list(range(chunks)), result.attempts


@pytest.mark.parametrize("pool", ["prefork", "gevent"])
def test_a_worker_waiting_for_jobs_with_one_in_flight_survives_a_redis_restart(tmp_path: Path, pool: str) -> None:
    # Given a worker with two slots and one job in its 4 s call: the consumer waits on the
    # queue (a BRPOP) for the other slot when Redis goes down (under prefork, Celery's event
    # loop, kombu's stock transport then stopped the worker: worker/broker.py)
    server = PrivateRedis(appendonly=True, folder=tmp_path / "redis").start()
    (tmp_path / "logs").mkdir()
    try:
        with running_worker(server.url, 1, tmp_path / "logs", concurrency=2, pool=pool) as worker:
            worker.script(Script(default=Behaviour(latency_ms=4_000)))
            server.redis_fsync()
            first = submit([{"role": "user", "content": "in flight"}], app=worker.app, job_id="in-flight")
            assert jobs_in_their_call(worker) == {"in-flight"}
            # When Redis restarts on its files
            server.restart()
            result = first.result(timeout=60)
            # Then the worker goes on: the job ends succeeded, and a job sent after is run
            worker.script(Script())
            after = submit([{"role": "user", "content": "after"}], app=worker.app, job_id="after").result(timeout=60)
            alive = worker.process.poll() is None
            log = worker.log()
    finally:
        server.stop()
    assert result.ok, result.error
    assert after.ok, after.error
    assert alive and "Unrecoverable error" not in log, log[-3000:]
