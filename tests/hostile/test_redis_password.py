"""Redis with a password on every path: broker, results, routing state, carry secret, batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from operators.embedded import PrivateRedis
from producers.batch import run_file
from producers.client import submit
from tests.support import RunningWorker, running_worker
from worker.providers.simulated import Behaviour, Script

PASSWORD = "pw with spaces/and:colons"
SMALL = "mistral-small-latest"
ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def locked_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with PrivateRedis(appendonly=False, password=PASSWORD) as server:
        port = server.port
        with pytest.raises(redis.AuthenticationError):  # the server really wants the password
            redis.Redis(port=port, socket_timeout=2).ping()
        with running_worker(server.url, 1, tmp_path_factory.mktemp("locked")) as running:
            yield running


def test_jobs_results_and_routing_state_work_with_a_password(locked_worker: RunningWorker) -> None:
    assert ":" in locked_worker.url and "@127.0.0.1" in locked_worker.url
    assert submit(ASK, app=locked_worker.app).result(timeout=30).ok
    # Routing state: a busy flag written here is read by the worker, which routes around it.
    locked_worker.redis.set(locked_worker.keys.busy(SMALL), "transient:test", ex=60)
    try:
        routed = submit(ASK, app=locked_worker.app).result(timeout=30)
    finally:
        locked_worker.redis.delete(locked_worker.keys.busy(SMALL))
    assert routed.ok and routed.tier == "medium"


def test_an_escalation_seals_its_carry_with_a_password(locked_worker: RunningWorker) -> None:
    locked_worker.script(Script(models={SMALL: Behaviour(poor_rate=1.0, poor="refusal")}))
    try:
        result = submit(ASK, app=locked_worker.app).result(timeout=30)
    finally:
        locked_worker.script(Script())
    assert result.ok and [e.to_tier for e in result.escalations] == ["medium"]


def test_a_batch_runs_with_a_password(locked_worker: RunningWorker, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"custom_id": f"c{i}", "body": {"messages": ASK}}) + "\n" for i in range(3)))
    progress = run_file(source, tmp_path / "out.jsonl", app=locked_worker.app)
    assert progress.succeeded == 3
