"""Process-local counters, flushed to one Redis hash at most once a second.

Provider failures, quality failures and routing-state failures are counted under
different names (``attempts:<outcome>``, ``quality:<check>``, ``state:busy_read_failed``)
so that they stay apart; ``tierline stats`` reads the hash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import redis

log = logging.getLogger(__name__)


class Metrics:
    """Thread-safe counters; `flush_every_s` bounds how often they reach Redis."""

    def __init__(self, *, flush_every_s: float = 1.0) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        """Counts not yet flushed."""
        with self._lock:
            return dict(self._counts)

    def maybe_flush(self, client: redis.Redis, key: str, ttl_s: int, *, force: bool = False) -> None:
        """Add pending counts to the Redis hash `key` if a flush is due (or `force`); never raises."""
        now = time.monotonic()
        if not force and now - self._last_flush < self._flush_every_s:
            return
        with self._lock:
            pending, self._counts = self._counts, Counter()
            self._last_flush = now
        if not pending:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for name, amount in pending.items():
                pipe.hincrby(key, name, amount)
            pipe.expire(key, ttl_s)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics flush failed, counts kept for the next one: %s", exc)
            with self._lock:
                self._counts.update(pending)


def read_metrics(client: redis.Redis, key: str) -> dict[str, int]:
    """All flushed counters in the hash `key`."""
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in sorted(raw.items())}
