"""Start what the embedded default needs: a private Redis if no URL is set, and workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from contract.names import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION
from operators.embedded import PrivateRedis, redis_url_from_env


@contextmanager
def redis_url() -> Iterator[tuple[str, bool]]:
    """The user's Redis URL, or a private server's for the duration; (url, private)."""
    url = redis_url_from_env()
    if url:
        yield url, False
        return
    with PrivateRedis() as server:
        yield server.url, True


@dataclass(frozen=True)
class WorkerSpec:
    """How to run one `celery worker` process: the demo's, a benchmark's or a test's."""

    concurrency: int = 2
    pool: str = "prefork"
    name: str = "tierline@%h"
    queues: str | None = f"{QUEUE_CONVERSATIONS},{QUEUE_EXTRACTION}"  # None: no -Q (every queue)
    app_module: str = "worker"
    loglevel: str = "WARNING"


def worker_command(spec: WorkerSpec) -> list[str]:
    queues = ["-Q", spec.queues] if spec.queues else []
    return [
        sys.executable, "-m", "celery", "-A", spec.app_module, "worker", "-n", spec.name, "-P", spec.pool,
        "-c", str(spec.concurrency), *queues, "-E", "--without-mingle", "--without-gossip",
        f"--loglevel={spec.loglevel}",
    ]


@contextmanager
def background_worker(
    app: Celery, env: Mapping[str, str], spec: WorkerSpec, *, log_path: Path | None = None,
    cwd: Path | None = None, timeout_s: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker subprocess that answers ping (through `app`) before this yields; stopped on exit.

    env: its whole environment. log_path: where its output goes (none: discarded).
    """
    with open(log_path or os.devnull, "wb") as out:
        process = subprocess.Popen(
            worker_command(spec), env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
            start_new_session=True,
        )
    try:
        _wait_ready(app, process, spec.name, log_path, timeout_s)
        yield process
    finally:
        stop_process(process)


def _wait_ready(
    app: Celery, process: subprocess.Popen[bytes], name: str, log_path: Path | None, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while not app.control.ping(destination=[name], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path else "(no log kept)"
            raise RuntimeError(f"the worker {name} did not start:\n{tail}")


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group (a warm shutdown), SIGKILL it if that takes too long."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


def run_forwarding_signals(command: list[str], env: Mapping[str, str]) -> int:
    """Run `command` in its own session, pass it every stop signal this process gets; its exit code.

    In its own session the child does not also get a terminal's Ctrl-C directly: each
    SIGINT reaches it once (the first a warm shutdown, the second a cold one).
    """
    process = subprocess.Popen(command, env=dict(env), start_new_session=True)
    previous = {sig: signal.signal(sig, lambda number, _frame: process.send_signal(number))
                for sig in FORWARDED_SIGNALS}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
