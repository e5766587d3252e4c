"""The worker app plus a plain no-op task, for the throughput benchmark's baseline.

    celery -A ops.bench.noop_app worker ...
"""

from __future__ import annotations

from typing import Any

from worker.celery import app

NOOP = "bench.noop"


@app.task(name=NOOP)
def noop(*args: Any, **kwargs: Any) -> None:
    """Does nothing: the cost of Celery itself on the same Redis, same settings."""
    return None


__all__ = ["app", "noop"]
