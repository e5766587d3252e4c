"""Start what the embedded default needs: a private Redis if no URL is set, and workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from producers.embedded import PrivateRedis, redis_url_from_env
from tasks.schemas import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION


@contextmanager
def redis_url() -> Iterator[tuple[str, bool]]:
    """The user's Redis URL, or a private server's for the duration; (url, private)."""
    url = redis_url_from_env()
    if url:
        yield url, False
        return
    with PrivateRedis() as server:
        yield server.url, True


def worker_command(concurrency: int, *, pool: str = "prefork", name: str = "tierline@%h") -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker", "worker", "-n", name, "-P", pool,
        "-c", str(concurrency), "-Q", f"{QUEUE_CONVERSATIONS},{QUEUE_EXTRACTION}",
        "-E", "--without-mingle", "--without-gossip", "--loglevel=WARNING",
    ]


@contextmanager
def background_worker(
    app: Celery, env: Mapping[str, str], *, concurrency: int = 2, log_path: Path | None = None,
    name: str = "tierline-demo@localhost", timeout_s: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker subprocess that answers ping before this yields; stopped on exit."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        worker_command(concurrency, name=name), env=dict(env), stdout=out,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start (see {log_path or 'its log'})")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_path:
            out.close()  # type: ignore[union-attr]
