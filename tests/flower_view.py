"""A real Flower (`tierline flower`, what docker-compose runs) on a test worker's broker.

`running_flower(worker)` starts it with basic auth on a free loopback port and yields its
URL once it answers; `get` reads its HTTP API; `seen_by` sends jobs until Flower shows
one (it subscribes to events on its own time, so the first jobs may pass unseen).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from producers.client import submit
from tests.support import ROOT, RunningWorker

TIERLINE_CLI = [sys.executable, "-c", "from operators.cli import main; main()"]
AUTH = "ops:s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_flower(worker: RunningWorker) -> Iterator[str]:
    """`tierline flower` on the worker's broker, with basic auth `AUTH`; its URL."""
    port = free_port()
    env = dict(os.environ, REDIS_URL=worker.url, FLOWER_BASIC_AUTH=AUTH, PYTHONPATH=str(ROOT))
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
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def get(url: str, auth: str | None = AUTH) -> tuple[int, bytes]:
    """Status and body of a GET on Flower (with basic auth `auth`, None for none)."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def task_view(flower: str, task_id: str) -> dict[str, Any]:
    """Flower's task view of `task_id` (its API's task info); {} while it knows nothing of it."""
    status, body = get(f"{flower}/api/task/info/{task_id}")
    return dict(json.loads(body)) if status == 200 else {}


_visible = itertools.count(1)


def seen_by(worker: RunningWorker, flower: str, messages: list[dict[str, str]]) -> tuple[str, dict[str, Any]]:
    """Send `messages` as jobs until Flower lists one with its arguments; that job's id and
    Flower's record of it in its task list."""
    deadline = time.monotonic() + 30
    while True:
        job_id = f"flower-visible-{next(_visible)}"  # new ids on every call: one id, one payload
        assert submit(messages, app=worker.app, job_id=job_id).result(timeout=30).ok
        seen_until = min(deadline, time.monotonic() + 2)
        while time.monotonic() < seen_until:
            status, body = get(f"{flower}/api/tasks")
            assert status == 200
            task = json.loads(body).get(job_id, {})
            if task.get("args"):
                return job_id, task
            time.sleep(0.1)
        assert time.monotonic() < deadline, "Flower never listed a job"
    raise AssertionError("unreachable")
