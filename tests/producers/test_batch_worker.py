"""Batch files through a real worker: formats, bad lines, pins, and an interrupted run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import redis

from contract.names import QUEUE_CONVERSATIONS
from producers.batch import DuplicateCustomIds, run_file, submit_batch
from producers.batch.queued import queued_job_ids
from producers.batch.window import Ticket
from producers.client import producer_app_for, send_job, submit
from tests.support import ROOT, RunningWorker
from worker.keys import COLLECTED_TTL_S, collected
from worker.metrics import read_metrics
from worker.providers.simulated import Behaviour, Script

TIERLINE = str(Path(sys.executable).with_name("tierline"))  # the console script of this venv


def openai_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": text}], "max_tokens": 64, **body}}


def mistral_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "body": {"messages": [{"role": "user", "content": text}], **body}}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def _fast(worker: RunningWorker) -> None:
    worker.script(Script())


@pytest.mark.parametrize("make_line", [openai_line, mistral_line], ids=["openai", "mistral"])
def test_a_batch_file_gives_one_output_line_per_input_line(
    worker: RunningWorker, tmp_path: Path, make_line: Callable[..., dict[str, Any]]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [make_line(f"req-{i}", f"question {i}") for i in range(20)])
    out = tmp_path / "out.jsonl"

    progress = run_file(source, out, app=worker.app, window=4)

    records = read_jsonl(out)
    assert sorted(r["custom_id"] for r in records) == sorted(f"req-{i}" for i in range(20))
    assert all(r["response"]["status_code"] == 200 and r["error"] is None for r in records)
    assert {r["tierline"]["tier"] for r in records} == {"small"}
    assert all(r["response"]["body"]["usage"]["total_tokens"] > 0 for r in records)
    assert (progress.succeeded, progress.failed, progress.invalid) == (20, 0, 0)
    assert not (tmp_path / "out.errors.jsonl").exists()


def test_an_output_line_says_why_its_answer_stopped(worker: RunningWorker, tmp_path: Path) -> None:
    # Given one line with room for its answer and one cut to 2 output tokens
    source = write_jsonl(tmp_path / "in.jsonl", [
        openai_line("roomy", "hello", max_tokens=256), openai_line("cut", "hello", max_tokens=2)])

    run_file(source, tmp_path / "out.jsonl", app=worker.app)

    records = {r["custom_id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    reasons = {cid: r["response"]["body"]["choices"][0]["finish_reason"] for cid, r in records.items()}
    assert reasons == {"roomy": "stop", "cut": "length"}
    assert records["cut"]["response"]["body"]["usage"]["completion_tokens"] == 2


def test_bad_lines_land_in_the_errors_file_with_their_numbers_and_the_batch_goes_on(
    worker: RunningWorker, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        openai_line("ok-1", "hello"),
        "this is not json",
        {"custom_id": "no-messages", "body": {"max_tokens": 5}},
        {"custom_id": "wizard", "body": {"messages": [{"role": "wizard", "content": "hi"}]}},
        {"custom_id": "embed", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}},
        openai_line("ok-2", "hello again"),
    ])
    out = tmp_path / "out.jsonl"

    progress = run_file(source, out, app=worker.app)

    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    assert [(e["line"], e["custom_id"], e["error"]["code"]) for e in errors] == [
        (2, None, "invalid_json"), (3, "no-messages", "missing_messages"),
        (4, "wizard", "unknown_role"), (5, "embed", "wrong_endpoint"),
    ]
    assert sorted(r["custom_id"] for r in read_jsonl(out)) == ["ok-1", "ok-2"]
    assert (progress.succeeded, progress.invalid) == (2, 4)


def test_a_model_in_the_body_is_a_pin_unless_the_batch_routes(worker: RunningWorker, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [
        openai_line("large", "hi", model="mistral-large-latest"),
        openai_line("unknown", "hi", model="gpt-nonexistent"),
    ])

    run_file(source, tmp_path / "pinned.jsonl", app=worker.app)
    run_file(source, tmp_path / "routed.jsonl", app=worker.app, route=True)

    pinned = {r["custom_id"]: r for r in read_jsonl(tmp_path / "pinned.jsonl")}
    routed = {r["custom_id"]: r for r in read_jsonl(tmp_path / "routed.jsonl")}
    assert pinned["large"]["tierline"]["model"] == "mistral-large-latest"
    assert pinned["unknown"]["response"] is None and pinned["unknown"]["error"]["code"] == "unknown_pinned_model"
    assert [e["custom_id"] for e in read_jsonl(tmp_path / "pinned.errors.jsonl")] == ["unknown"]
    assert {r["tierline"]["model"] for r in routed.values()} == {"mistral-small-latest"}


def test_poor_answers_escalate_and_the_output_line_tells_where_it_went(
    worker: RunningWorker, tmp_path: Path
) -> None:
    worker.script(Script(models={"mistral-small-latest": Behaviour(poor_rate=1.0, poor="refusal")}))
    source = write_jsonl(tmp_path / "in.jsonl", [mistral_line(f"q{i}", f"question {i}") for i in range(3)])

    progress = run_file(source, tmp_path / "out.jsonl", app=worker.app)

    records = read_jsonl(tmp_path / "out.jsonl")
    assert progress.succeeded == 3
    assert {r["tierline"]["tier"] for r in records} == {"medium"}
    assert all(r["tierline"]["escalations"][0]["from_tier"] == "small" for r in records)
    assert all(len(r["tierline"]["attempts"]) == 2 for r in records)


def test_duplicate_custom_ids_reject_the_batch_before_anything_is_sent(
    worker: RunningWorker, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line("a", "x"), openai_line("b", "y"), openai_line("a", "z")])

    with pytest.raises(DuplicateCustomIds) as caught:
        run_file(source, tmp_path / "out.jsonl", app=worker.app)

    assert caught.value.duplicates == {"a": [1, 3]}
    assert not (tmp_path / "out.jsonl").exists()


def test_submit_batch_from_python_yields_outcomes_and_a_second_submit_reuses_the_results(
    worker: RunningWorker,
) -> None:
    lines = [mistral_line(f"p{i}", f"python line {i}") for i in range(10)]

    first = submit_batch(lines, app=worker.app, window=3)
    outcomes = list(first.results())
    again = submit_batch(iter(lines), app=worker.app)
    repeated = {o.custom_id: o.result for o in again.results()}

    assert sorted(o.custom_id or "" for o in outcomes) == sorted(f"p{i}" for i in range(10))
    assert first.progress.succeeded == 10 and first.progress.in_flight == 0
    assert first.progress.cost_usd > 0
    assert all(repeated[o.custom_id] == o.result for o in outcomes if o.custom_id)


def _tierline_batch(worker: RunningWorker, source: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": worker.url, "PYTHONPATH": str(ROOT)}
    command = [TIERLINE, "batch", "run", str(source), "-o", str(out), "--window", "6", "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop_when(process: subprocess.Popen[bytes], out: Path, lines: int, sig: signal.Signals) -> None:
    deadline = time.monotonic() + 30
    while not out.exists() or out.read_bytes().count(b"\n") < lines:
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.01)
    process.send_signal(sig)
    process.communicate(timeout=30)


def _counted_after(worker: RunningWorker, jobs: int) -> dict[str, int]:
    """The worker's flushed counters once `jobs` succeeded jobs are in them. A job's end is
    what flushes them: jobs that fail before any call (a pin the catalog lacks, so they
    add no attempt and no success) end until the counters are there."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        flush = submit([{"role": "user", "content": "flush"}], app=worker.app, pin_model="no-such-model")
        assert flush.result(timeout=20).error is not None
        metrics = read_metrics(worker.redis, worker.keys.metrics)
        if metrics.get("jobs:succeeded", 0) >= jobs:
            return metrics
    raise AssertionError(f"the counters never showed {jobs} succeeded jobs")


def test_an_interrupted_batch_run_again_finishes_every_line_once_and_calls_no_provider_twice(
    worker_factory: Callable[..., AbstractContextManager[RunningWorker]], tmp_path: Path
) -> None:
    total = 60
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"r{i}", f"line {i}") for i in range(total)])
    out = tmp_path / "out.jsonl"
    with worker_factory(concurrency=1) as w:
        w.script(Script(default=Behaviour(latency_ms=15)))

        _stop_when(_tierline_batch(w, source, out), out, 15, signal.SIGINT)
        _stop_when(_tierline_batch(w, source, out), out, 35, signal.SIGKILL)
        with open(out, "ab") as torn:  # as if the kill had landed mid-write
            torn.write(b'{"id": "batch_req_torn", "custom_id": "r5')
        finish = _tierline_batch(w, source, out)
        log = finish.communicate(timeout=60)[0].decode()

        assert finish.returncode == 0, log
        ids = [r["custom_id"] for r in read_jsonl(out)]
        assert sorted(ids) == sorted(f"r{i}" for i in range(total))
        # Counters reach Redis at most once a second per process, when a job ends.
        metrics = _counted_after(w, total)
    assert metrics["attempts:ok"] == total  # one provider call per line: none twice
    assert metrics["jobs:succeeded"] == total


def test_a_written_batch_releases_its_results_and_a_late_duplicate_is_not_run(
    worker: RunningWorker, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"k{i}", f"keep {i}") for i in range(5)])
    out = tmp_path / "out.jsonl"
    run_file(source, out, app=worker.app)
    records = read_jsonl(out)
    job_ids = [r["tierline"]["job_id"] for r in records]
    assert len(job_ids) == 5
    backend = worker.app.backend
    # The results are gone from Redis, a small marker each stays behind.
    assert worker.redis.exists(*[backend.get_key_for_task(j) for j in job_ids]) == 0
    assert all(0 < worker.redis.ttl(collected(j)) <= COLLECTED_TTL_S for j in job_ids)
    # A copy of a finished job still queued from an interrupted run: not run again.
    first_line = json.loads(source.read_text().splitlines()[0])
    late = send_job({"messages": first_line["body"]["messages"], "job_id": job_ids[0]}, app=worker.app)
    result = late.result(timeout=20)
    assert result.error is not None and result.error.code == "duplicate"
    assert result.attempts == []


def test_a_resumed_batch_does_not_send_again_a_job_still_waiting_on_the_broker(
    idle_db_url: str, tmp_path: Path
) -> None:
    # No worker consumes this database: what an interrupted run sent still waits.
    url = idle_db_url
    client = redis.Redis.from_url(url)
    app = producer_app_for(url, url)
    source = write_jsonl(tmp_path / "in.jsonl", [openai_line(f"w{i}", f"wait {i}") for i in range(3)])
    first = submit_batch(source, app=app, window=10)
    first_ids = {t.job_id for t in first._feed if isinstance(t, Ticket)}
    first.close()
    leftover = sorted(first_ids)[0]
    send_job({"messages": [{"role": "user", "content": "x"}], "job_id": leftover}, app=app)
    assert queued_job_ids(app, QUEUE_CONVERSATIONS) == {leftover}

    again = submit_batch(source, app=app, window=10)
    window = again._window
    window.admit([t for t in again._feed if isinstance(t, Ticket)])
    again.close()
    # Three lines in flight, two new messages: the waiting one was not sent twice.
    assert len(window) == 3
    assert client.llen(QUEUE_CONVERSATIONS) == 1 + 2
