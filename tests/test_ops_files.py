"""Operations files: the compose file is valid, Flower shows summaries behind basic auth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from producers.client import submit
from tests.flower_view import TIERLINE_CLI, get, running_flower, seen_by, task_view
from tests.support import ROOT, RunningWorker
from worker.providers.simulated import Behaviour, Script

SECRET = "patient record 4471-XYZ, do not leak"


def test_compose_file_is_valid() -> None:
    if shutil.which("docker-compose") is None:
        # CI installs it (.ci/run); a developer's machine may lack it.
        assert not os.environ.get("CI"), "docker-compose is missing in CI: .ci/run installs Debian's"
        pytest.skip("SKIPPED LOUDLY: Debian's docker-compose is not installed (apt-get install docker-compose)")
    env = dict(os.environ, FLOWER_BASIC_AUTH="admin:pw", REDIS_PASSWORD="redis-pw")
    out = subprocess.run(["docker-compose", "config"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "tierline" in out.stdout and "127.0.0.1" in out.stdout and "redis://:redis-pw@redis" in out.stdout
    monitoring = subprocess.run(["docker-compose", "--profile", "monitoring", "config"], cwd=ROOT, env=env,
                                capture_output=True, text=True)
    assert monitoring.returncode == 0, monitoring.stderr
    # Prometheus and Grafana on the loopback only, the exporter on the compose network only
    assert "127.0.0.1:9090:9090" in monitoring.stdout and "127.0.0.1:3000:3000" in monitoring.stdout
    assert "- tierline\n    - metrics\n" in monitoring.stdout and ":9808:" not in monitoring.stdout
    assert "appendonly" in (ROOT / "ops" / "redis" / "redis.conf").read_text()
    assert "noeviction" in (ROOT / "ops" / "redis" / "redis.conf").read_text()


@pytest.fixture
def flower(worker: RunningWorker) -> Iterator[str]:
    """`tierline flower` (what docker-compose runs) on the worker's broker, with basic auth."""
    with running_flower(worker) as url:
        yield url


@pytest.mark.parametrize("auth", [None, "", "admin", "admin:", ":pw", "a:b,c"])
def test_tierline_flower_refuses_to_start_without_credentials(auth: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update(REDIS_URL="redis://127.0.0.1:1/0", PYTHONPATH=str(ROOT))
    if auth is not None:
        env["FLOWER_BASIC_AUTH"] = auth
    out = subprocess.run([*TIERLINE_CLI, "flower"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "will not start" in out.stdout and "FLOWER_BASIC_AUTH" in out.stdout


def test_tierline_flower_listens_on_loopback_unless_told_otherwise() -> None:
    from operators.flower import credentials_problem, flower_command

    assert "--address=127.0.0.1" in flower_command()
    assert "--address=0.0.0.0" in flower_command(address="0.0.0.0")
    oauth = {"FLOWER_AUTH": ".*@example.com", "FLOWER_AUTH_PROVIDER": "flower.views.auth.GithubLoginHandler",
             "FLOWER_OAUTH2_KEY": "k", "FLOWER_OAUTH2_SECRET": "s", "FLOWER_OAUTH2_REDIRECT_URI": "http://x/login"}
    assert credentials_problem(oauth) is None
    assert credentials_problem({"FLOWER_BASIC_AUTH": "a:b,c:d"}) is None


def test_flower_needs_auth_and_shows_a_summary_not_the_conversation(worker: RunningWorker, flower: str) -> None:
    assert get(f"{flower}/api/tasks", None)[0] == 401
    job_id, task = seen_by(worker, flower, [{"role": "user", "content": SECRET}])
    assert str(task.get("args", "")).startswith(f"job={job_id} messages=1")
    assert SECRET not in json.dumps(task.get("args")) + json.dumps(task.get("kwargs"))


def _flower_task(flower: str, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Flower's task view of one task, polled until `done` says so (or 10 s pass)."""
    deadline = time.monotonic() + 10
    task = task_view(flower, job_id)
    while time.monotonic() < deadline and not done(task):
        time.sleep(0.2)
        task = task_view(flower, job_id)
    return task


def test_flower_lists_a_failed_job_as_failure_with_its_code(worker: RunningWorker, flower: str) -> None:
    # Given Flower watching, when a job fails (its pinned model is not in the catalog)
    seen_by(worker, flower, [{"role": "user", "content": "warm-up"}])  # Flower listens now
    handle = submit([{"role": "user", "content": SECRET}], app=worker.app, job_id="flower-failed-1",
                    pin_model="no-such-model")
    result = handle.result(timeout=30)
    # Then the producer still gets the whole failed JobResult
    assert (result.job_id, result.status, result.error and result.error.code) == (
        "flower-failed-1", "failed", "unknown_pinned_model")
    assert result.error is not None and "no-such-model" in result.error.message
    # and Flower lists it as FAILURE with its code, and nothing of the conversation
    task = _flower_task(flower, "flower-failed-1", lambda t: t.get("state") == "FAILURE" and bool(t.get("exception")))
    assert task.get("state") == "FAILURE", task
    assert "code=unknown_pinned_model" in str(task.get("exception")), task
    status, body = get(f"{flower}/api/tasks?state=FAILURE")
    assert status == 200 and "flower-failed-1" in json.loads(body)  # what Flower's Failed tab lists
    assert SECRET not in json.dumps(task)


def test_flower_shows_an_escalated_job_as_escalated(worker: RunningWorker, flower: str) -> None:
    seen_by(worker, flower, [{"role": "user", "content": "warm-up"}])  # Flower listens now
    # Given a small tier whose every answer is a refusal
    worker.script(Script(models={"mistral-small-latest": Behaviour(poor_rate=1.0, poor="refusal")}))
    try:
        result = submit([{"role": "user", "content": SECRET}], app=worker.app,
                        job_id="flower-escalated-1").result(timeout=30)
    finally:
        worker.script(Script())
    # Then the job escalated, and Flower's task view says so
    assert result.ok and result.tier == "medium" and len(result.escalations) == 1
    task = _flower_task(flower, "flower-escalated-1",
                        lambda t: "escalated" in str(t.get("kwargs")) and t.get("state") == "SUCCESS")
    assert "escalated: small→medium" in str(task.get("kwargs")), task
    assert "escalated=small→medium" in str(task.get("result")), task
    assert SECRET not in json.dumps({k: task.get(k) for k in ("args", "kwargs", "exception")})
