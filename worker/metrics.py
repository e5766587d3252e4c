"""Process-local metrics, flushed to Redis in one pipeline at most once a second.

Two kinds of record, both batched in this process and never a round trip per job:

- named counters (``attempts:<outcome>``, ``quality:<check>``, ``state:busy_read_failed``)
  in one hash, which ``tierline stats`` reads;
- series (`worker.series`): counters and histograms with bounded labels, added to a
  cumulative hash that ``tierline metrics`` exports, and to a hash per time bucket
  (``TIERLINE_METRICS_BUCKET_S`` wide, expiring after ``TIERLINE_METRICS_RETENTION_S``)
  that ``tierline report`` reads for a time window. Every worker process of every host
  adds into the same hashes (HINCRBYFLOAT), so counts add up without any local files.

A daemon thread flushes what is pending every `flush_every_s`, so the last jobs of a
burst reach Redis without waiting for the next job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import redis

from worker import series as S
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


class Metrics:
    """Thread-safe counters and series; `flush_every_s` bounds how often they reach Redis."""

    def __init__(
        self, *, flush_every_s: float = 1.0, bucket_s: int = 60, clock: Callable[[], float] = time.time
    ) -> None:
        self._counts: Counter[str] = Counter()
        self._series: dict[tuple[int, str], float] = {}
        self._later: list[tuple[int, Callable[[], Batch]]] = []
        self._lock = threading.Lock()
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        self._clock = clock
        self.bucket_s = bucket_s

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def count(self, series: S.Series, labels: S.Labels, amount: float = 1.0) -> None:
        """Add `amount` to the counter `series` with these label values (built at the flush)."""
        self.add_later(lambda: Batch().count(series, labels, amount))

    def observe(self, series: S.Series, labels: S.Labels, value: float) -> None:
        """Record one observation of the histogram `series` (built at the flush)."""
        self.add_later(lambda: Batch().observe(series, labels, value))

    def add(self, batch: Batch) -> None:
        """Add every record of `batch` at once (one lock, one clock read)."""
        bucket = self._bucket()
        with self._lock:
            self._merge(bucket, batch)

    def add_later(self, make: Callable[[], Batch]) -> None:
        """Queue `make`; its batch is built at the next flush (off the job's path), in the
        time bucket of now."""
        bucket = self._bucket()
        with self._lock:
            self._later.append((bucket, make))

    def _bucket(self) -> int:
        now = int(self._clock())
        return now - now % self.bucket_s

    def _merge(self, bucket: int, batch: Batch) -> None:
        for name, amount in batch.fields:
            key = (bucket, name)
            self._series[key] = self._series.get(key, 0.0) + amount

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
            with self._lock:
                self._merge(bucket, batch)

    def snapshot(self) -> dict[str, int]:
        """Named counts not yet flushed."""
        with self._lock:
            return dict(self._counts)

    def pending_series(self) -> dict[str, float]:
        """Series fields not yet flushed, summed over their time buckets."""
        self._settle()
        out: dict[str, float] = {}
        with self._lock:
            for (_, name), amount in self._series.items():
                out[name] = out.get(name, 0.0) + amount
        return out

    def maybe_flush(self, sink: Sink, *, force: bool = False) -> None:
        """Add pending counts to Redis if a flush is due (or `force`); never raises."""
        now = time.monotonic()
        if not force and now - self._last_flush < self._flush_every_s:
            return
        self._settle()
        with self._lock:
            counts, self._counts = self._counts, Counter()
            pending, self._series = self._series, {}
            self._last_flush = now
        if not counts and not pending:
            return
        try:
            _write(sink, counts, pending)
        except redis.RedisError as exc:
            log.warning("metrics flush failed, counts kept for the next one: %s", exc)
            with self._lock:
                self._counts.update(counts)
                for key, amount in pending.items():
                    self._series[key] = self._series.get(key, 0.0) + amount


def _write(sink: Sink, counts: Counter[str], pending: dict[tuple[int, str], float]) -> None:
    """One pipeline: named counters, cumulative series, series per bucket, the bucket index."""
    keys = sink.keys
    pipe = sink.client.pipeline(transaction=False)
    for counter, n in counts.items():
        pipe.hincrby(keys.metrics, counter, n)
    if counts:
        pipe.expire(keys.metrics, sink.counters_ttl_s)
    buckets: set[int] = set()
    for (bucket, name), amount in pending.items():
        pipe.hincrbyfloat(keys.series_total, name, amount)
        pipe.hincrbyfloat(keys.series_bucket(sink.bucket_s, bucket), name, amount)
        buckets.add(bucket)
    if pending:
        pipe.expire(keys.series_total, sink.counters_ttl_s)
        now = time.time()
        for bucket in buckets:
            key = keys.series_bucket(sink.bucket_s, bucket)
            pipe.expire(key, sink.retention_s)
            pipe.zadd(keys.series_index, {key: bucket})
        pipe.zremrangebyscore(keys.series_index, "-inf", now - sink.retention_s - sink.bucket_s)
        pipe.expire(keys.series_index, sink.retention_s + sink.bucket_s)
    pipe.execute()


class Flusher:
    """A daemon thread that flushes `metrics` to `sink` every `every_s` seconds."""

    def __init__(self, metrics: Metrics, sink: Sink, *, every_s: float = 1.0) -> None:
        self._metrics, self._sink, self._every_s = metrics, sink, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tierline-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self._metrics.maybe_flush(self._sink)

    def stop(self) -> None:
        self._stop.set()
        self._metrics.maybe_flush(self._sink, force=True)


def read_metrics(client: redis.Redis, key: str) -> dict[str, int]:
    """All flushed named counters in the hash `key`."""
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in sorted(raw.items())}


def read_series(client: redis.Redis, key: str) -> dict[str, float]:
    """All flushed series fields in the hash `key` (the cumulative one or a bucket's)."""
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in raw.items()}
