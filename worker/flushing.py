"""Amounts gathered in a process and added to Redis in batches, never a round trip per job.

The metrics (`worker.metrics`), the health windows (`worker.health`) and the spend
ledger (`worker.budget`) each add up amounts in memory (`Batched.add`, a lock and a
dict update) and send them to Redis in one pipeline at most every `every_s` seconds
(`Batched.maybe_flush`, with the writer of each). Redis refusing a batch puts its
amounts back, so a short outage delays counts instead of losing them. `FlushTimer`
flushes on a clock as well, so the last jobs of a burst reach Redis within a second
without waiting for the next job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import redis

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Batched(Generic[K]):
    """Additive amounts by key, thread-safe, flushed at most every `every_s` seconds."""

    def __init__(self, what: str, *, every_s: float = 1.0) -> None:
        self._what = what
        self._every_s = every_s
        self._lock = threading.Lock()
        self._pending: dict[K, float] = {}
        self._last_flush = time.monotonic()

    def add(self, key: K, amount: float = 1.0) -> None:
        with self._lock:
            self._pending[key] = self._pending.get(key, 0.0) + amount

    def add_all(self, amounts: Iterable[tuple[K, float]]) -> None:
        """Add several amounts under one lock."""
        with self._lock:
            pending = self._pending
            for key, amount in amounts:
                pending[key] = pending.get(key, 0.0) + amount

    def pending(self) -> dict[K, float]:
        """What is not flushed yet (a copy)."""
        with self._lock:
            return dict(self._pending)

    def maybe_flush(
        self, write: Callable[[dict[K, float]], None], *, force: bool = False,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """Hand what is pending to `write` if a flush is due (or `force`); never raises.

        prepare: called first when the flush is due (to add what was queued lazily).
        `write` raising a Redis error puts the amounts back for the next flush.
        """
        now = time.monotonic()
        if not force and now - self._last_flush < self._every_s:
            return
        if prepare is not None:
            prepare()
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = now
        if not pending:
            return
        try:
            write(pending)
        except redis.RedisError as exc:
            log.warning("%s flush failed, kept for the next one: %s", self._what, exc)
            self.add_all(pending.items())


class FlushTimer:
    """A daemon thread that calls `flush` every `every_s` seconds until `stop`."""

    def __init__(self, flush: Callable[[], None], *, every_s: float = 1.0, name: str = "tierline-flush") -> None:
        self._flush = flush
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._flush()
            except Exception:  # a bug in one flush must not end every later one
                log.exception("periodic flush failed")

    def stop(self) -> None:
        self._stop.set()
