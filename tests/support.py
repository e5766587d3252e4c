"""Real parts for tests: a private Redis server and real Celery worker processes."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from contract.names import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for
from worker.keys import Keys
from worker.providers.simulated import Script, publish_script

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count(1)

# Celery's result consumer retries its reconnect ~20 times a second apart before it gives up
# with a RuntimeError; a test that needs it to give up sets this on its app's
# `result_backend_transport_options`.
SHORT_RECONNECT = {"retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}}


def db_url(base: str, db: int) -> str:
    """`base` Redis URL moved to database `db`."""
    head, _, tail = base.rstrip("/").rpartition("/")
    if tail.isdigit():
        return f"{head}/{db}"
    return f"{base.rstrip('/')}/{db}"


@dataclass
class RunningWorker:
    """A `celery -A worker worker` subprocess on its own Redis database."""

    url: str
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    prefix: str
    broker: str = ""  # the broker's URL when it is not `url` (RabbitMQ)
    results_url: str = ""  # TIERLINE_RESULT_URL when the results are not on `url`

    @property
    def app(self) -> Celery:
        return producer_app_for(self.broker or self.url, self.results_url or self.url)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    def script(self, script: Script) -> None:
        """Publish a simulation script; workers here re-read it on every call."""
        with self.redis as client:  # closed at once: a client left to the GC warns in another test
            publish_script(client, self.keys.sim_script, script, ttl_s=3600)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]


def worker_env(url: str, prefix: str, extra: Mapping[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERLINE_")}
    env.pop("MISTRAL_API_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    env.update({
        "REDIS_URL": url,
        "TIERLINE_KEY_PREFIX": prefix,
        "TIERLINE_SIM_REFRESH_S": "0",
        "TIERLINE_BACKOFF_S": "0.01",
        "PYTHONPATH": str(ROOT),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


@contextmanager
def running_worker(
    base_url: str,
    db: int,
    tmp: Path,
    *,
    env: Mapping[str, Any] | None = None,
    concurrency: int = 2,
    pool: str = "prefork",
    queues: str | None = f"{QUEUE_CONVERSATIONS},{QUEUE_EXTRACTION}",
    after: RunningWorker | None = None,
) -> Iterator[RunningWorker]:
    """Start a real worker on database `db` of `base_url`, yield it when it answers ping.

    after: a worker (stopped or dead) whose database and keys this one takes over as they are.
    """
    url = after.url if after is not None else db_url(base_url, db)
    client = redis.Redis.from_url(url)
    if after is None:
        client.flushdb()
    name = f"test{next(_names)}-{os.getpid()}@localhost"
    prefix = after.prefix if after is not None else f"t{db}:"
    log_path = tmp / f"{name.split('@')[0]}.log"
    spec = WorkerSpec(concurrency, pool=pool, name=name, queues=queues, loglevel="INFO")
    broker = str((env or {}).get("TIERLINE_BROKER_URL", ""))
    try:
        with background_worker(producer_app_for(broker or url, url), worker_env(url, prefix, env or {}), spec,
                               log_path=log_path, cwd=ROOT, timeout_s=30) as process:
            yield RunningWorker(url, name, process, log_path, prefix, broker,
                                str((env or {}).get("TIERLINE_RESULT_URL", "")))
    finally:
        client.flushdb()
        client.close()


class TaskEvents:
    """The task events a monitor such as Flower receives, from the moment this is opened.

    `next_event` waits for one more event (a worker's heartbeat comes every 2 s, so a wait
    never hangs); `wait_for` drains until the event asked for has come.
    """

    def __init__(self, app: Celery) -> None:
        self.seen: list[dict[str, Any]] = []
        self._connection = app.connection_for_read()
        receiver = app.events.Receiver(self._connection, handlers={"*": self.seen.append})
        self._events = receiver.itercapture(limit=None, timeout=30, wakeup=True)
        next(self._events)  # subscribed: the workers answered the wake-up with an event

    def wait_for(self, kind: str, task_id: str, timeout_s: float = 30) -> dict[str, Any]:
        """The first event of `kind` (``task-succeeded``, say) about task `task_id`."""
        return self._first(task_id, (kind,), timeout_s)

    def ended(self, task_id: str, timeout_s: float = 30) -> dict[str, Any]:
        """The event that ended task `task_id`: ``task-succeeded`` or ``task-failed``."""
        return self._first(task_id, ("task-succeeded", "task-failed"), timeout_s)

    def _first(self, task_id: str, kinds: tuple[str, ...], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [e for e in self.about(task_id) if e.get("type") in kinds]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no {' or '.join(kinds)} event for {task_id}"
            next(self._events)

    def about(self, task_id: str) -> list[dict[str, Any]]:
        """Every event seen so far about task `task_id`."""
        return [e for e in self.seen if e.get("uuid") == task_id]

    def close(self) -> None:
        self._events.close()
        self._connection.release()


@contextmanager
def task_events(app: Celery) -> Iterator[TaskEvents]:
    """`with task_events(worker.app) as events:` the task events sent from now on."""
    events = TaskEvents(app)
    try:
        yield events
    finally:
        events.close()
