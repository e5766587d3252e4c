"""RabbitMQ as the broker (quorum queues, publisher confirms), results and routing state on
Redis; a killed worker's jobs come back as soon as its connection drops.

Each test session gets its own vhost on the local RabbitMQ (127.0.0.1:5672, guest/guest),
deleted after; without a RabbitMQ answering there these tests are skipped, loudly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from producers.client import submit
from producers.extraction import submit_extraction
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
HOST, PORT = "127.0.0.1", 5672


def _rabbitmq_answers() -> str | None:
    """Why RabbitMQ cannot be used here, or None."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    try:
        with socket.create_connection((HOST, PORT), timeout=2):
            return None
    except OSError as exc:
        return f"no RabbitMQ on {HOST}:{PORT} ({exc})"


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    problem = _rabbitmq_answers()
    if problem is not None:
        sys.stderr.write(f"\n*** RabbitMQ tests SKIPPED: {problem} ***\n")
        pytest.skip(f"RabbitMQ tests skipped: {problem}")
    vhost = f"tierline-test-{os.getpid()}-{secrets.token_hex(4)}"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{HOST}:{PORT}/{vhost}"
    finally:
        _ctl("delete_vhost", vhost)


def _queue_types(vhost: str) -> dict[str, str]:
    out = subprocess.run(["rabbitmqctl", "list_queues", "-p", vhost, "name", "type", "--no-table-headers", "-q"],
                         capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split()[:2] for line in out.stdout.splitlines() if line.strip())


def test_jobs_run_through_rabbitmq_on_quorum_queues(worker_factory: WorkerFactory, amqp_url: str) -> None:
    with worker_factory(env={"TIERLINE_BROKER_URL": amqp_url}, queues=None) as worker:
        conversation = submit([{"role": "user", "content": "Through RabbitMQ?"}], app=worker.app)
        extraction = submit_extraction("Acme owes 12 euros.", {"type": "object"}, app=worker.app)
        assert conversation.result(timeout=30).ok
        assert extraction.result(timeout=30).ok
    types = _queue_types(amqp_url.rsplit("/", 1)[1])
    assert types.get("conversations") == "quorum" and types.get("extraction") == "quorum", types


def test_a_killed_workers_jobs_come_back_when_its_connection_drops(
    worker_factory: WorkerFactory, amqp_url: str
) -> None:
    env = {"TIERLINE_BROKER_URL": amqp_url, "TIERLINE_SOFT_TIME_LIMIT_S": 20, "TIERLINE_HARD_TIME_LIMIT_S": 30}
    with worker_factory(env=env, pool="gevent", concurrency=10) as first:
        first.script(Script(default=Behaviour(latency_ms=1_500)))
        handles = [submit([{"role": "user", "content": f"rabbit drill {i}"}], app=first.app,
                          job_id=f"rabbit-drill-{i}-{os.getpid()}") for i in range(20)]
        deadline = time.monotonic() + 30
        while sum(1 for _ in first.redis.scan_iter(f"{first.prefix}lease:*")) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        # When the whole worker dies with jobs in flight
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        killed_at = time.monotonic()
        assert any(not h.done() for h in handles)
        with worker_factory(env=env, pool="gevent", concurrency=10, after=first):
            results = [h.result(timeout=60) for h in handles]
            elapsed = time.monotonic() - killed_at
    # Then every job ends succeeded, far sooner than any visibility timeout: RabbitMQ
    # requeued them at once, and the new worker waited only for the dead one's leases to lapse
    assert [r.status for r in results] == ["succeeded"] * 20
    assert elapsed < 30, elapsed
