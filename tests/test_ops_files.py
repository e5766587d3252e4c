"""Operations files: the compose file is valid, Flower shows summaries behind basic auth."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from producers.client import submit
from tests.support import ROOT, RunningWorker
from worker.providers.simulated import Behaviour, Script

SECRET = "patient record 4471-XYZ, do not leak"
ANSWERED = "Zq4471private"


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TIERLINE_CLI = [sys.executable, "-c", "from operators.cli import main; main()"]


@pytest.fixture
def flower(worker: RunningWorker) -> Iterator[str]:
    """`tierline flower` (what docker-compose runs) on the worker's broker, with basic auth."""
    port = _free_port()
    env = dict(os.environ, REDIS_URL=worker.url, FLOWER_BASIC_AUTH="ops:s3cret", PYTHONPATH=str(ROOT))
    process = subprocess.Popen([*TIERLINE_CLI, "flower", f"--port={port}"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            break  # answering (401)
        except OSError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


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


def _get(url: str, auth: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_flower_needs_auth_and_shows_a_summary_not_the_conversation(worker: RunningWorker, flower: str) -> None:
    assert _get(f"{flower}/api/tasks", None)[0] == 401
    job_id, task = _first_job_flower_shows(worker, flower)
    assert str(task.get("args", "")).startswith(f"job={job_id} messages=1")
    assert SECRET not in json.dumps(task.get("args")) + json.dumps(task.get("kwargs"))


_visible = itertools.count(1)


def _first_job_flower_shows(worker: RunningWorker, flower: str) -> tuple[str, dict[str, object]]:
    """Send jobs until Flower lists one with its arguments (it subscribes to events on its
    own time, so the first jobs may pass unseen); that job's id and Flower's record of it."""
    deadline = time.monotonic() + 30
    while True:
        job_id = f"flower-visible-{next(_visible)}"
        assert submit([{"role": "user", "content": SECRET}], app=worker.app, job_id=job_id).result(timeout=30).ok
        seen_until = min(deadline, time.monotonic() + 2)
        while time.monotonic() < seen_until:
            status, body = _get(f"{flower}/api/tasks", "ops:s3cret")
            assert status == 200
            task = json.loads(body).get(job_id, {})
            if task.get("args"):
                return job_id, task
            time.sleep(0.1)
        assert time.monotonic() < deadline, "Flower never listed a job"
    raise AssertionError("unreachable")


def _flower_task(flower: str, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Flower's view of one task, polled until `done` says so (or 10 s pass)."""
    deadline = time.monotonic() + 10
    task: dict[str, Any] = {}
    while time.monotonic() < deadline and not done(task):
        status, body = _get(f"{flower}/api/tasks", "ops:s3cret")
        assert status == 200
        task = json.loads(body).get(job_id, {})
        time.sleep(0.2)
    return task


def test_flower_lists_a_failed_job_as_failure_with_its_code(worker: RunningWorker, flower: str) -> None:
    # Given Flower watching, when a job fails (its pinned model is not in the catalog)
    _first_job_flower_shows(worker, flower)  # Flower sees the workers' events by now
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
    assert SECRET not in json.dumps(task)


def test_flower_shows_an_escalated_job_as_escalated(worker: RunningWorker, flower: str) -> None:
    # Given a small tier whose every answer is a refusal
    _first_job_flower_shows(worker, flower)  # Flower sees the workers' events by now
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
