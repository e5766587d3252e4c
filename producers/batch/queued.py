"""Job ids already waiting on the broker, read once when a batch starts.

A run interrupted half way leaves up to a window of its jobs queued. The next run must
not send those again: two copies of one job could run at once and call a provider
twice. Messages waiting in the queue list will be delivered, so their jobs are only
waited for. (Jobs a worker had already taken are not in the list; they finish, or come
back after the visibility timeout, and a second copy of those finds their stored result.)
"""

from __future__ import annotations

import json
import logging

import redis
from celery import Celery

log = logging.getLogger(__name__)

# Past this many waiting messages (other producers' backlog), the scan is skipped.
SCAN_LIMIT = 100_000


def queued_job_ids(app: Celery, queue: str, *, limit: int = SCAN_LIMIT) -> frozenset[str]:
    """Task ids of the messages waiting in `queue` on `app`'s Redis broker."""
    client = redis.Redis.from_url(str(app.conf.broker_url), socket_timeout=10)
    try:
        length = int(client.llen(queue))
        if length == 0 or length > limit:
            if length:
                log.warning("%d messages wait in %s: not scanned for this batch's jobs", length, queue)
            return frozenset()
        raw: list[bytes] = client.lrange(queue, 0, length - 1)  # type: ignore[assignment]
    finally:
        client.close()
    return frozenset(filter(None, (_task_id(item) for item in raw)))


def _task_id(raw: bytes) -> str | None:
    try:
        envelope = json.loads(raw)
    except ValueError:
        return None
    headers = envelope.get("headers") if isinstance(envelope, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None
