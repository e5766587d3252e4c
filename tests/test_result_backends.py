"""Every result path on every result backend: the same tests on Redis and on PostgreSQL.

Real workers store their results on Redis (the default) or on a PostgreSQL database of
the test's own (Celery's database backend); handles, batch runs, resume, release,
redelivery and retention all read through the results interface (`results`).
The PostgreSQL half is skipped, loudly, when the local server does not answer.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest
from celery import states

from contract.names import TASK_EXTRACT_CHUNK, chunk_id, chunk_index
from contract.schemas import JobResult
from operators.services import stop_process
from ops.bench.scratch_db import PostgresServer
from producers import submit
from producers.batch import run_file
from producers.client import producer_app_for, send_job
from producers.extraction import submit_extraction
from results import ResultStore, store_for
from tests.pg_relay import PingRelay
from tests.producers.test_batch_worker import TIERLINE, openai_line, read_jsonl, write_jsonl
from tests.support import ROOT, RunningWorker, task_events
from tests.test_extraction_batch import document, small_context_catalog
from worker.metrics import read_metrics
from worker.providers.simulated import Behaviour, Script

SMALL, MEDIUM = "mistral-small-latest", "mistral-medium-latest"
ASK = [{"role": "user", "content": "Summarise the quarterly report in three bullet points."}]
CONTRACT = {"type": "object", "properties": {
    "parties": {"type": "array", "items": {"type": "string"}}, "effective_date": {"type": "string"}}}

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]


def backend_env(request: pytest.FixtureRequest, stack: ExitStack) -> dict[str, str]:
    """The worker environment for the test's backend: nothing for Redis, a fresh database else."""
    if request.param == "redis":
        return {}
    postgres = request.getfixturevalue("postgres")
    return {"TIERLINE_RESULT_URL": stack.enter_context(postgres.database())}


@pytest.fixture(scope="module", params=["redis", "postgres"])
def results_worker(
    request: pytest.FixtureRequest, worker_factory: WorkerFactory, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWorker]:
    """A worker whose results go to the backend of the parameter; its models' contexts are
    2K / 4K / 8K tokens, so that a document of a few thousand words is chunked."""
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    catalog.write_text(small_context_catalog())
    with ExitStack() as stack:
        env = {**backend_env(request, stack), "TIERLINE_CATALOG_PATH": str(catalog)}
        yield stack.enter_context(worker_factory(env=env))


@pytest.fixture(params=["redis", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment of a worker of the test's own on the backend of the parameter."""
    with ExitStack() as stack:
        yield backend_env(request, stack)


@pytest.fixture
def on_backend(results_worker: RunningWorker) -> RunningWorker:
    """The module's worker on its backend, with a calm simulated provider."""
    results_worker.script(Script())
    return results_worker


def store(worker: RunningWorker) -> ResultStore:
    return store_for(worker.app.backend)


def test_the_worker_stores_on_the_backend_it_was_given(on_backend: RunningWorker) -> None:
    result = submit(ASK, app=on_backend.app, job_id=f"where-{os.getpid()}").result(timeout=30)
    assert result.ok
    with on_backend.redis as client:
        on_redis = client.exists(f"celery-task-meta-{result.job_id}")
    assert bool(on_redis) == (not on_backend.results_url)
    assert store(on_backend).read([result.job_id])[result.job_id].ended() == result


def test_a_poor_answer_escalates_through_the_queue_and_the_handle_gets_the_final_answer(
    on_backend: RunningWorker,
) -> None:
    on_backend.script(Script(models={SMALL: Behaviour(poor_rate=1.0, poor="refusal")}))
    handle = submit(ASK, app=on_backend.app)

    result = handle.result(timeout=30)

    assert result.ok and result.job_id == handle.id
    assert (result.tier, result.model) == ("medium", MEDIUM)
    assert [(e.from_tier, e.to_tier, e.check) for e in result.escalations] == [("small", "medium", "refusal")]
    assert handle.done()


def test_an_extraction_job_comes_back_parsed(on_backend: RunningWorker) -> None:
    text = "This agreement between Acme Ltd and Bolt GmbH takes effect on 1 March 2026."
    result = submit_extraction(text, CONTRACT, app=on_backend.app).result(timeout=30)
    assert result.ok, result.error
    assert isinstance(result.parsed, dict) and set(result.parsed) <= set(CONTRACT["properties"])


def test_a_document_of_several_chunks_is_merged_under_its_job_id(on_backend: RunningWorker) -> None:
    # Given a document of several chunks (a chord: chunk tasks, then the merge)
    job_id = f"chunked-{os.getpid()}-{id(on_backend)}"
    text = document(random.Random(3), 3_000)
    # When it is extracted
    result = submit_extraction(text, CONTRACT, app=on_backend.app, policy="cascade", max_output_tokens=256,
                               job_id=job_id).result(timeout=90)
    # Then one merged JobResult comes back under its id, every chunk's result stored on the backend
    assert result.ok, result.error
    chunks = result.chunks or 0
    assert chunks > 1 and result.job_id == job_id
    assert sorted({a.chunk for a in result.attempts}) == list(range(chunks))
    parts = store(on_backend).read([chunk_id(job_id, i) for i in range(chunks)])
    assert len(parts) == chunks and all(p.succeeded() for p in parts.values())
    # and a chunk delivered again answers from its stored result, calling no provider
    on_backend.script(Script(default=Behaviour(error_rate=1.0)))
    again = {"document": "chunk text", "schema": CONTRACT, "chunk_index": 0, "chunk_total": chunks,
             "chunk_start": 0, "start_tier": 0, "policy": "cascade", "max_output_tokens": 256}
    with task_events(on_backend.app) as events:
        on_backend.app.send_task(TASK_EXTRACT_CHUNK, kwargs={"job": again}, task_id=chunk_id(job_id, 0))
        events.wait_for("task-succeeded", chunk_id(job_id, 0))
    again_stored = store(on_backend).read([chunk_id(job_id, 0)])[chunk_id(job_id, 0)].succeeded()
    assert again_stored == parts[chunk_id(job_id, 0)].succeeded()


def test_a_chunk_whose_process_the_hard_limit_stops_fails_its_document_once_listing_every_chunk(
    worker_factory: WorkerFactory, backend: dict[str, str], tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(small_context_catalog())
    # Hard limit past the first heartbeat (5 s), so the journal holds the call in flight.
    env = {**backend, "TIERLINE_CATALOG_PATH": str(catalog), "TIERLINE_SOFT_TIME_LIMIT_S": 2,
           "TIERLINE_HARD_TIME_LIMIT_S": 7}
    # One pool process: the chunks run one after another, the first alone in its process.
    with worker_factory(env=env, pool="prefork", concurrency=1) as worker:
        # Given every call is stuck in native code
        worker.script(Script(default=Behaviour(latency_ms=60_000, honours_timeout=False, blocks_process=True)))
        handle = submit_extraction(document(random.Random(8), 2_000), CONTRACT, app=worker.app,
                                   policy="cascade", max_output_tokens=256, job_id="stuck-chunk")
        # When the first chunk's call is under way (its journal lists it), and calls answer again
        stuck = _chunk_in_a_call(worker, "stuck-chunk")
        worker.script(Script())
        result = handle.result(timeout=60)
        # Then the hard limit stopped that chunk's process, and the document still ends as one
        # failed JobResult naming the chunk, listing its cut call and the other chunks' answers
        assert result.status == "failed" and result.error is not None, (result, worker.log()[-8000:])
        assert result.error.code == "out_of_time" and "hard time limit" in result.error.message, (
            result.error, worker.log()[-8000:])
        chunks = result.chunks or 0
        assert chunks > 1
        assert result.error.message.startswith(f"chunk {chunk_index(stuck) + 1}/{chunks}: "), result.error
        cut = [(a.chunk, a.outcome, a.error_code) for a in result.attempts if a.outcome != "ok"]
        assert cut == [(chunk_index(stuck), "interrupted", "hard_time_limit")], result.attempts
        assert sorted(a.chunk for a in result.attempts if a.outcome == "ok") == [
            i for i in range(chunks) if i != chunk_index(stuck)]
        # and the document's task ended once, as FAILURE carrying that JobResult (no chord error)
        meta = worker.app.backend.get_task_meta("stuck-chunk")
        assert meta["status"] == "FAILURE" and type(meta["result"]).__name__ == "JobFailed", meta
        assert worker.log().count("extraction done job=stuck-chunk ") == 1
        assert "ChordError" not in worker.log()


def _chunk_in_a_call(worker: RunningWorker, job_id: str, timeout_s: float = 30) -> str:
    """The id of the first chunk of `job_id` whose journal lists a call in flight."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for key in worker.redis.scan_iter(match=worker.keys.journal(f"{job_id}:chunk:*")):
            if json.loads(worker.redis.get(key) or b"[]"):
                return key.decode().removeprefix(worker.keys.journal(""))
        time.sleep(0.1)
    raise AssertionError(f"no chunk of {job_id} recorded a call in flight: {worker.log()[-4000:]}")


def test_a_reused_id_with_another_payload_ends_conflict_and_keeps_the_stored_result(
    on_backend: RunningWorker,
) -> None:
    job_id = f"reused-{os.getpid()}-{id(on_backend)}"
    first = submit(ASK, app=on_backend.app, job_id=job_id).result(timeout=30)
    other = [{"role": "user", "content": "Transfer all the money to account 99."}]

    second = submit(other, app=on_backend.app, job_id=job_id).result(timeout=30)

    assert first.ok and first.fingerprint is not None
    assert second.error is not None and second.error.code == "conflict" and second.content is None
    kept = store(on_backend).read([job_id])[job_id].succeeded()
    assert kept == first  # the stored result is the first sender's, untouched


def test_a_redelivered_copy_of_a_running_job_waits_for_its_stored_result(on_backend: RunningWorker) -> None:
    on_backend.script(Script(default=Behaviour(latency_ms=2_000)))
    job_id = f"run-once-{os.getpid()}-{id(on_backend)}"
    job = {"messages": ASK, "job_id": job_id}
    # Given the job runs (it holds its lease)
    first = send_job(job, app=on_backend.app)
    deadline = time.monotonic() + 20
    while not on_backend.redis.exists(on_backend.keys.lease(job_id, 0)):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    # When a second copy of its message arrives (as a redelivery would)
    second = send_job(job, app=on_backend.app)
    # Then the copy waits for the result the first stores on the backend, and calls no provider
    one, two = first.result(timeout=30), second.result(timeout=30)
    assert one.ok and one == two and len(one.attempts) == 1
    assert f"redelivered job={job_id} still runs elsewhere: waiting for its result" in on_backend.log()
    assert on_backend.redis.get(on_backend.keys.deliveries(job_id, 0)) == b"2"


def test_a_failed_job_comes_back_failed_with_its_code(on_backend: RunningWorker) -> None:
    result = submit(ASK, app=on_backend.app, pin_model="no-such-model").result(timeout=30)
    assert result.status == "failed" and result.error is not None and result.error.code == "unknown_pinned_model"


def test_a_failed_job_is_stored_as_failure_carrying_its_whole_job_result(on_backend: RunningWorker) -> None:
    # Given a job that fails (its pinned model is not in the catalog), its conversation private
    job_id = f"failed-{os.getpid()}-{id(on_backend)}"
    secret = [{"role": "user", "content": "PRIVATE-7731 my card is 4111 1111 1111 1111"}]
    result = submit(secret, app=on_backend.app, job_id=job_id, pin_model="no-such-model").result(timeout=30)
    # Then the handle has the whole failed JobResult, with its message
    assert result.error is not None and result.error.code == "unknown_pinned_model"
    assert "no-such-model" in result.error.message
    # and the backend holds a Celery FAILURE whose exception and traceback are the summary alone
    stored = store(on_backend).read([job_id])[job_id]
    assert stored.state == states.FAILURE and stored.ended() == result
    assert str(stored.value).startswith("JobResult(") and "code=unknown_pinned_model" in str(stored.value)
    meta = on_backend.app.backend.get_task_meta(job_id)
    assert meta["status"] == states.FAILURE and "code=unknown_pinned_model" in str(meta.get("traceback"))
    assert "PRIVATE-7731" not in json.dumps(meta, default=str)
    # and a resubmission gets the stored failed result without running again
    again = submit(secret, app=on_backend.app, job_id=job_id, pin_model="no-such-model").result(timeout=30)
    assert again == result


def test_a_resubmitted_job_gets_its_stored_result_without_running_again(on_backend: RunningWorker) -> None:
    job_id = f"again-{os.getpid()}-{id(on_backend)}"
    first = submit(ASK, app=on_backend.app, job_id=job_id).result(timeout=30)

    again = submit(ASK, app=on_backend.app, job_id=job_id).result(timeout=30)

    assert first.ok and again == first  # the stored JobResult itself: same latency, same attempts


def test_a_handle_times_out_on_a_job_that_never_finishes(on_backend: RunningWorker) -> None:
    with pytest.raises(TimeoutError):
        store(on_backend).wait("never-sent", 0.2)


def test_a_written_batch_releases_its_results_and_a_late_duplicate_is_not_run(
    on_backend: RunningWorker, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"k{i}", f"keep {i}") for i in range(5)])
    run_file(source, tmp_path / "out.jsonl", app=on_backend.app)
    job_ids = [r["tierline"]["job_id"] for r in read_jsonl(tmp_path / "out.jsonl")]
    results = store(on_backend)

    assert len(job_ids) == 5
    assert results.read(job_ids) == {}
    assert all(results.collected(j) for j in job_ids)
    first = json.loads(source.read_text().splitlines()[0])
    late = send_job({"messages": first["body"]["messages"], "job_id": job_ids[0]}, app=on_backend.app)
    duplicate = late.result(timeout=20)
    assert duplicate.error is not None and duplicate.error.code == "duplicate"
    assert duplicate.attempts == []


def _batch(worker: RunningWorker, source: Path, out: Path, *, results_url: str = "") -> subprocess.Popen[bytes]:
    """`tierline batch run` on `worker`'s broker and results (results_url: another way to them)."""
    env = {**os.environ, "REDIS_URL": worker.url, "PYTHONPATH": str(ROOT)}
    if results_url or worker.results_url:
        env["TIERLINE_RESULT_URL"] = results_url or worker.results_url
    command = [TIERLINE, "batch", "run", str(source), "-o", str(out), "--window", "6", "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _interrupt_after(process: subprocess.Popen[bytes], out: Path, lines: int) -> None:
    deadline = time.monotonic() + 60
    while not out.exists() or out.read_bytes().count(b"\n") < lines:
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    log = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 130, log


@pytest.mark.timeout(180)
def test_an_interrupted_batch_resumes_and_every_line_runs_once(
    worker_factory: WorkerFactory, backend: dict[str, str], tmp_path: Path
) -> None:
    total = 40
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"r{i}", f"line {i}") for i in range(total)])
    out = tmp_path / "out.jsonl"
    with worker_factory(concurrency=1, env=backend) as w:
        w.script(Script(default=Behaviour(latency_ms=15)))

        _interrupt_after(_batch(w, source, out), out, 12)

        _finish_every_line_once(w, source, out, total)


def _finish_every_line_once(worker: RunningWorker, source: Path, out: Path, total: int) -> None:
    """Run the batch again to the end; check every line is in OUT once and no line ran twice."""
    finish = _batch(worker, source, out)
    log = finish.communicate(timeout=90)[0].decode()

    assert finish.returncode == 0, log
    records = read_jsonl(out)
    assert sorted(r["custom_id"] for r in records) == sorted(f"r{i}" for i in range(total))
    job_ids = [r["tierline"]["job_id"] for r in records]
    assert store(worker).read(job_ids) == {}  # every written result released
    stop_process(worker.process)  # a stopping worker flushes its counters
    with worker.redis as client:
        metrics = read_metrics(client, worker.keys.metrics)
    assert metrics["attempts:ok"] == total  # no line called a provider twice


def _sigint_at_ping(relay: PingRelay, process: subprocess.Popen[bytes], ping: int) -> threading.Event:
    """Send `process` SIGINT just as its pool sends its `ping`-th ping through `relay`; set once sent."""
    sent, at = threading.Event(), relay.pings + ping

    def on_ping(seen: int) -> None:
        if seen == at:
            process.send_signal(signal.SIGINT)
            sent.set()

    relay.on_ping = on_ping
    return sent


@pytest.mark.timeout(180)
def test_ctrl_c_while_the_pool_pings_the_database_ends_the_batch_as_interrupted(
    worker_factory: WorkerFactory, postgres: PostgresServer, tmp_path: Path
) -> None:
    # Given a batch on PostgreSQL whose pool reaches the database through a relay that sees its pings
    total = 60
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"r{i}", f"line {i}") for i in range(total)])
    out = tmp_path / "out.jsonl"
    with (
        postgres.database() as url,
        worker_factory(concurrency=1, env={"TIERLINE_RESULT_URL": url}) as w,
        PingRelay(url) as relay,
    ):
        w.script(Script(default=Behaviour(latency_ms=15)))
        for _ in range(5):
            # When Ctrl-C lands just as the pool pings (a driver's KeyboardInterrupt there once
            # came out as psycopg's ProgrammingError: exit 1 and a traceback)
            batch = _batch(w, source, out, results_url=relay.url)
            sent = _sigint_at_ping(relay, batch, 5)
            log = batch.communicate(timeout=30)[0].decode()

            # Then the run ends as interrupted, every time
            assert sent.is_set(), f"the pool never pinged through the relay (exit {batch.returncode}): {log}"
            assert batch.returncode == 130 and "interrupted:" in log, log

        # And the same command finishes the rest, each line once
        _finish_every_line_once(w, source, out, total)


def _gone(check: Callable[[], bool], *, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_results_and_markers_expire_after_the_result_expiry(
    worker_factory: WorkerFactory, backend: dict[str, str], tmp_path: Path
) -> None:
    # Given results that expire after 2 s (a database is purged every 0.2 s by the worker)
    env = {**backend, "TIERLINE_RESULT_EXPIRES_S": "2", "TIERLINE_RESULT_CLEANUP_S": "0.2"}
    with worker_factory(env=env) as w:
        results = store(w)
        kept = submit(ASK, app=w.app).result(timeout=30)
        released = submit(ASK, app=w.app).result(timeout=30)
        results.release([released.job_id])
        assert results.read([kept.job_id]) and results.collected(released.job_id)

        # Then the result goes, by its TTL on Redis or by the worker's purge on a database
        assert _gone(lambda: not results.read([kept.job_id])), "the result did not expire"
        if w.results_url:  # and a database's marker row with it
            assert _gone(lambda: not results.collected(released.job_id)), "the marker did not expire"
            assert "purged" in w.log()
        else:  # a Redis marker lives for the producer's own result expiry (a day here)
            with w.redis as client:
                marker = client.ttl(f"tierline-collected-{released.job_id}")
            assert 0 < marker <= int(w.app.conf.result_expires.total_seconds())


def test_the_psycopg2_url_works_as_well_as_psycopg_3(postgres: PostgresServer) -> None:
    # Given results written through Celery's database backend on a psycopg2 URL
    with postgres.database() as url:
        app = producer_app_for("memory://", url.replace("+psycopg:", "+psycopg2:", 1))
        assert app.backend.url.startswith("postgresql+psycopg2://")
        stored = JobResult(job_id="p2", status="succeeded", content="hi").model_dump(mode="json")
        app.backend.store_result("p2", stored, states.SUCCESS)
        results = store_for(app.backend)

        # Then the interface reads, releases and marks them there too
        assert results.read(["p2", "absent"])["p2"].ended() == JobResult.model_validate(stored)
        results.release(["p2"])
        assert results.read(["p2"]) == {} and results.collected("p2") and not results.collected("absent")
        assert results.purge_expired() == 0  # nothing older than a day
