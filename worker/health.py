"""Health windows per model, shared by every worker, fed in batches.

Each attempt is counted in this process (`observe`, no I/O); at most once a second
(`maybe_flush`, called where the metrics flush is) the counts go to one Redis hash per
model, ``<prefix>health:<model>`` with fields ``<bucket>:ok``, ``<bucket>:err`` and
``<bucket>:l<bin>``, in the same pipeline that reads back the window and the circuit
of each model flushed. The circuit decisions (`worker.circuit`, pure) then write the
models whose state changes, and drop buckets that left the window.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from worker.circuit import (
    LATENCY_BOUNDS_MS,
    HealthLimits,
    Stored,
    Window,
    encode,
    latency_bin,
    next_state,
    parse_stored,
    window_since,
)
from worker.flushing import Batched
from worker.keys import HEALTH_STATE_TTL_S, Keys
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthConfig:
    limits: HealthLimits
    window_s: float = 300.0
    bucket_s: float = 10.0
    flush_every_s: float = 1.0


class HealthRecorder:
    """Counts attempts per model in this process and sends them to Redis in batches."""

    def __init__(
        self, client: redis.Redis, keys: Keys, config: HealthConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._keys = keys
        self.config = config
        self._clock = clock
        self._pending: Batched[tuple[str, str]] = Batched("health", every_s=config.flush_every_s)

    def observe(self, model: str, *, ok: bool, latency_ms: float) -> None:
        """One attempt of `model`: a success (with its latency) or a provider failure."""
        bucket = int(self._clock() // self.config.bucket_s)
        if ok:
            self._pending.add_all((((model, f"{bucket}:ok"), 1), ((model, f"{bucket}:l{latency_bin(latency_ms)}"), 1)))
        else:
            self._pending.add((model, f"{bucket}:err"))

    def maybe_flush(self, *, force: bool = False) -> None:
        """Send pending counts and update circuits if a flush is due; never raises."""
        self._pending.maybe_flush(self._write, force=force)

    def _write(self, pending: Mapping[tuple[str, str], float]) -> None:
        by_model: dict[str, Counter[str]] = {}
        for (model, name), amount in pending.items():
            by_model.setdefault(model, Counter())[name] += int(amount)
        self._flush(by_model)

    def _flush(self, pending: Mapping[str, Counter[str]]) -> None:
        ttl_ms = int((self.config.window_s + 2 * self.config.bucket_s) * 1000)
        pipe = self._redis.pipeline(transaction=False)
        for model, counts in pending.items():
            for name, amount in counts.items():
                pipe.hincrby(self._keys.health(model), name, amount)
            pipe.pexpire(self._keys.health(model), ttl_ms)
            pipe.hgetall(self._keys.health(model))
            pipe.get(self._keys.circuit(model))
        replies = pipe.execute()
        writes = self._redis.pipeline(transaction=False)
        at = 0
        for model, counts in pending.items():
            at += len(counts) + 1
            fields, circuit = replies[at], replies[at + 1]
            at += 2
            self._judge(writes, model, fields, parse_stored(circuit))
        if len(writes):
            writes.execute()

    def _judge(self, writes: redis.client.Pipeline, model: str, fields: dict[bytes, bytes], stored: Stored) -> None:
        now = self._clock()
        buckets, stale = parse_buckets(fields, oldest=now - self.config.window_s - self.config.bucket_s,
                                       bucket_s=self.config.bucket_s)
        if stale:
            writes.hdel(self._keys.health(model), *stale)
        changed = next_state(stored, buckets, now, self.config.limits,
                             window_s=self.config.window_s, bucket_s=self.config.bucket_s)
        if changed is not None:
            log.warning("circuit of model=%s: %s -> %s", model, stored.state.value, changed.state.value)
            writes.set(self._keys.circuit(model), encode(changed), ex=HEALTH_STATE_TTL_S)


def parse_buckets(
    fields: Mapping[bytes, bytes], *, oldest: float, bucket_s: float
) -> tuple[dict[int, Window], list[bytes]]:
    """Bucket number → counts from a health hash, and the fields older than `oldest` (Unix s)."""
    raw: dict[int, Counter[str]] = {}
    stale: list[bytes] = []
    for name, value in fields.items():
        bucket_text, _, what = name.decode().partition(":")
        bucket = int(bucket_text)
        if (bucket + 1) * bucket_s < oldest:
            stale.append(name)
            continue
        raw.setdefault(bucket, Counter())[what] += int(value)
    size = len(LATENCY_BOUNDS_MS) + 1
    return {b: Window(c["ok"], c["err"], tuple(c[f"l{i}"] for i in range(size))) for b, c in raw.items()}, stale


@dataclass(frozen=True)
class ModelHealth:
    """What `tierline models` shows: circuit, window error rate and p95 (None: no samples)."""

    stored: Stored
    window: Window

    @property
    def p95_ms(self) -> float | None:
        p95 = self.window.percentile_ms(0.95)
        return None if p95 is None or math.isinf(p95) else p95


def read_health(
    client: redis.Redis, keys: Keys, models: tuple[str, ...], config: HealthConfig
) -> dict[str, ModelHealth]:
    """Each model's circuit and its window over the last `config.window_s`, for operators."""
    pipe = client.pipeline(transaction=False)
    for model in models:
        pipe.hgetall(keys.health(model))
        pipe.get(keys.circuit(model))
    replies = pipe.execute()
    now = time.time()
    out = {}
    for i, model in enumerate(models):
        buckets, _ = parse_buckets(replies[2 * i], oldest=now - config.window_s, bucket_s=config.bucket_s)
        out[model] = ModelHealth(parse_stored(replies[2 * i + 1]),
                                 window_since(buckets, now - config.window_s, config.bucket_s))
    return out


def health_config(settings: Settings) -> HealthConfig:
    """The health windows' and circuits' settings."""
    return HealthConfig(
        HealthLimits(
            max_error_rate=settings.health_max_error_rate, max_p95_ms=settings.health_max_p95_ms,
            min_samples=settings.health_min_samples, open_s=settings.health_open_s,
            probe_share=settings.health_probe_share, probe_samples=settings.health_probe_samples,
        ),
        window_s=settings.health_window_s, bucket_s=settings.health_bucket_s,
    )
