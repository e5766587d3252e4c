"""The worker app plus a plain no-op task, for the throughput benchmark's baseline.

    celery -A ops.bench.noop_app worker ...
"""

from __future__ import annotations

import time
from typing import Any

from worker.celery import app

NOOP = "bench.noop"
SLEEP = "bench.sleep"


@app.task(name=NOOP)
def noop(*args: Any, **kwargs: Any) -> None:
    """Does nothing: the cost of Celery itself on the same Redis, same settings."""
    return None


@app.task(name=SLEEP)
def sleep(*args: Any, seconds: float = 1.0, **kwargs: Any) -> None:
    """Sleeps `seconds` (cooperatively under gevent): a plain task waiting on a slow call."""
    time.sleep(seconds)


__all__ = ["app", "noop", "sleep"]
