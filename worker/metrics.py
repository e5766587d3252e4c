"""Process-local metrics, flushed to Redis in one pipeline at most once a second.

Two kinds of record, both batched in this process and never a round trip per job:

- named counters (``attempts:<outcome>``, ``quality:<check>``, ``state:busy_read_failed``)
  in one hash, which ``tierline stats`` reads;
- series (`worker.series`): counters and histograms with bounded labels, added to a
  cumulative hash that ``tierline metrics`` exports, and to a hash per time bucket
  (``TIERLINE_METRICS_BUCKET_S`` wide, expiring after ``TIERLINE_METRICS_RETENTION_S``)
  that ``tierline report`` reads for a time window. Every worker process of every host
  adds into the same hashes (HINCRBYFLOAT), so counts add up without any local files.

The batching, the put-back on a failed write and the timer that flushes every second
are `worker.flushing`'s, shared with the health windows and the spend ledger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from worker import series as S
from worker.flushing import Batched
from worker.keys import Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sink:
    """Where a flush goes: the Redis client, the key schema, bucket width and TTLs."""

    client: redis.Redis
    keys: Keys
    bucket_s: int
    retention_s: int
    counters_ttl_s: int


class Batch:
    """Series records gathered for one `Metrics.add` (a finished job's dozen)."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[tuple[str, float]] = []

    def count(self, series: S.Series, labels: S.Labels, amount: float = 1.0) -> Batch:
        self.fields.append((S.field(series, labels), amount))
        return self

    def observe(self, series: S.Series, labels: S.Labels, value: float) -> Batch:
        self.fields += ((S.field(series, labels, "_bucket", S.bucket_of(series, value)), 1.0),
                        (S.field(series, labels, "_sum"), value), (S.field(series, labels, "_count"), 1.0))
        return self


NAMED = -1  # the "bucket" of a named counter (``tierline stats``): it has no time bucket

Field = tuple[int, str]  # (time bucket start, or NAMED; hash field)


class Metrics:
    """Thread-safe counters and series; `flush_every_s` bounds how often they reach Redis."""

    def __init__(
        self, *, flush_every_s: float = 1.0, bucket_s: int = 60, clock: Callable[[], float] = time.time
    ) -> None:
        self._pending: Batched[Field] = Batched("metrics", every_s=flush_every_s)
        self._later: list[tuple[int, Callable[[], Batch]]] = []
        self._lock = threading.Lock()
        self._clock = clock
        self.bucket_s = bucket_s

    def incr(self, name: str, amount: int = 1) -> None:
        self._pending.add((NAMED, name), amount)

    def count(self, series: S.Series, labels: S.Labels, amount: float = 1.0) -> None:
        """Add `amount` to the counter `series` with these label values (built at the flush)."""
        self.add_later(lambda: Batch().count(series, labels, amount))

    def observe(self, series: S.Series, labels: S.Labels, value: float) -> None:
        """Record one observation of the histogram `series` (built at the flush)."""
        self.add_later(lambda: Batch().observe(series, labels, value))

    def add(self, batch: Batch) -> None:
        """Add every record of `batch` at once (one lock, one clock read)."""
        bucket = self._bucket()
        self._pending.add_all(((bucket, name), amount) for name, amount in batch.fields)

    def add_later(self, make: Callable[[], Batch]) -> None:
        """Queue `make`; its batch is built at the next flush (off the job's path), in the
        time bucket of now."""
        bucket = self._bucket()
        with self._lock:
            self._later.append((bucket, make))

    def _bucket(self) -> int:
        now = int(self._clock())
        return now - now % self.bucket_s

    def _settle(self) -> None:
        """Build the batches queued by `add_later` into the pending series."""
        with self._lock:
            later, self._later = self._later, []
        for bucket, make in later:
            try:
                batch = make()
            except Exception:  # a bug in a record must not stop every later flush
                log.exception("a metrics record failed; left out")
                continue
            self._pending.add_all(((bucket, name), amount) for name, amount in batch.fields)

    def snapshot(self) -> dict[str, int]:
        """Named counts not yet flushed."""
        return {name: int(n) for (bucket, name), n in self._pending.pending().items() if bucket == NAMED}

    def pending_series(self) -> dict[str, float]:
        """Series fields not yet flushed, summed over their time buckets."""
        self._settle()
        out: dict[str, float] = {}
        for (bucket, name), amount in self._pending.pending().items():
            if bucket != NAMED:
                out[name] = out.get(name, 0.0) + amount
        return out

    def maybe_flush(self, sink: Sink, *, force: bool = False) -> None:
        """Add pending counts to Redis if a flush is due (or `force`); never raises."""
        self._pending.maybe_flush(lambda pending: _write(sink, pending), force=force, prepare=self._settle)


def _write(sink: Sink, pending: dict[Field, float]) -> None:
    """One pipeline: named counters, cumulative series, series per bucket, the bucket index."""
    keys = sink.keys
    pipe = sink.client.pipeline(transaction=False)
    named = False
    buckets: set[int] = set()
    for (bucket, name), amount in pending.items():
        if bucket == NAMED:
            pipe.hincrby(keys.metrics, name, int(amount))
            named = True
            continue
        pipe.hincrbyfloat(keys.series_total, name, amount)
        pipe.hincrbyfloat(keys.series_bucket(sink.bucket_s, bucket), name, amount)
        buckets.add(bucket)
    if named:
        pipe.expire(keys.metrics, sink.counters_ttl_s)
    if buckets:
        pipe.expire(keys.series_total, sink.counters_ttl_s)
        now = time.time()
        for bucket in buckets:
            key = keys.series_bucket(sink.bucket_s, bucket)
            pipe.expire(key, sink.retention_s)
            pipe.zadd(keys.series_index, {key: bucket})
        pipe.zremrangebyscore(keys.series_index, "-inf", now - sink.retention_s - sink.bucket_s)
        pipe.expire(keys.series_index, sink.retention_s + sink.bucket_s)
    pipe.execute()


def read_metrics(client: redis.Redis, key: str) -> dict[str, int]:
    """All flushed named counters in the hash `key`."""
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in sorted(raw.items())}


def read_series(client: redis.Redis, key: str) -> dict[str, float]:
    """All flushed series fields in the hash `key` (the cumulative one or a bucket's)."""
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in raw.items()}
