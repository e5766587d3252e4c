"""Circuit breaking on a model's health window: pure decisions, no Redis.

Each model's attempts are counted in time buckets (``bucket_s``) over a sliding window
(``window_s``): successes, errors, and latencies in log-spaced bins for percentiles.

```
closed ──(window: error rate or p95 over its limit, with enough samples)──▶ open
open ──(open_s passed: derived by readers, nothing stored)──▶ half_open
half_open ──(probe samples good)──▶ closed      half_open ──(probe samples bad)──▶ open
```

A closed circuit judges only samples since it closed (the errors that opened it do not
re-open it); a half-open one judges only its probes. An open model is planned after
every healthy one; a half-open one takes a bounded share of traffic (`probe_share`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# Upper bounds of the latency bins, in milliseconds; a last bin holds everything above.
LATENCY_BOUNDS_MS = (25, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200)


class Circuit(StrEnum):
    CLOSED = "closed"  # normal traffic
    OPEN = "open"  # demoted: planned after every healthy model, no probes yet
    HALF_OPEN = "half_open"  # demoted, but a bounded share of jobs probe it


@dataclass(frozen=True)
class HealthLimits:
    """When a circuit opens and closes again.

    max_error_rate: errors / attempts above which it opens. max_p95_ms: p95 latency above
    which it opens (None: latency never opens it). min_samples: attempts needed to judge.
    open_s: how long it stays open before probes start. probe_share: share of jobs (0–1)
    that try a half-open model in its usual place. probe_samples: probes needed to judge.
    """

    max_error_rate: float = 0.2
    max_p95_ms: float | None = None
    min_samples: int = 20
    open_s: float = 30.0
    probe_share: float = 0.05
    probe_samples: int = 5


@dataclass(frozen=True)
class Window:
    """Attempts in a span of the window: successes, errors and latency bin counts."""

    ok: int = 0
    errors: int = 0
    bins: tuple[int, ...] = (0,) * (len(LATENCY_BOUNDS_MS) + 1)

    @property
    def total(self) -> int:
        return self.ok + self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """The upper bound of the bin holding the `q` (0–1) latency quantile; inf above the last."""
        count = sum(self.bins)
        if not count:
            return None
        rank, seen = q * count, 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return float(LATENCY_BOUNDS_MS[i]) if i < len(LATENCY_BOUNDS_MS) else float("inf")
        return float("inf")


def latency_bin(latency_ms: float) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)


@dataclass(frozen=True)
class Stored:
    """A circuit as stored: its state and since when (Unix seconds)."""

    state: Circuit = Circuit.CLOSED
    since: float = 0.0


def seen_as(stored: Stored, now: float, limits: HealthLimits) -> Circuit:
    """The state routing acts on: an open circuit past `open_s` is half-open."""
    if stored.state is Circuit.OPEN and now - stored.since >= limits.open_s:
        return Circuit.HALF_OPEN
    return stored.state


def window_since(buckets: Mapping[int, Window], start: float, bucket_s: float) -> Window:
    """Sum of the buckets (bucket number → counts) that begin at or after `start`."""
    ok = errors = 0
    bins = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for number, window in buckets.items():
        if number * bucket_s >= start:
            ok, errors = ok + window.ok, errors + window.errors
            bins = [a + b for a, b in zip(bins, window.bins, strict=True)]
    return Window(ok, errors, tuple(bins))


def unhealthy(window: Window, limits: HealthLimits, *, needed: int) -> bool | None:
    """Whether `window` crosses the limits; None when it has fewer than `needed` attempts."""
    if window.total < needed:
        return None
    if window.error_rate > limits.max_error_rate:
        return True
    p95 = window.percentile_ms(0.95)
    return limits.max_p95_ms is not None and p95 is not None and p95 > limits.max_p95_ms


def next_state(
    stored: Stored, buckets: Mapping[int, Window], now: float, limits: HealthLimits,
    *, window_s: float, bucket_s: float,
) -> Stored | None:
    """The circuit's new state after these samples, or None when it stays as it is."""
    state = seen_as(stored, now, limits)
    if state is Circuit.CLOSED:
        judged = window_since(buckets, max(stored.since, now - window_s), bucket_s)
        return Stored(Circuit.OPEN, now) if unhealthy(judged, limits, needed=limits.min_samples) else None
    if state is Circuit.OPEN:
        return None
    probes = window_since(buckets, stored.since + limits.open_s, bucket_s)
    verdict = unhealthy(probes, limits, needed=limits.probe_samples)
    if verdict is None:
        return None
    return Stored(Circuit.OPEN, now) if verdict else Stored(Circuit.CLOSED, now)


def parse_stored(raw: bytes | str | None) -> Stored:
    """`"<state>:<since>"` as written by `encode`; anything unreadable counts as closed."""
    if raw is None:
        return Stored()
    text = raw.decode() if isinstance(raw, bytes) else raw
    state, _, since = text.partition(":")
    try:
        return Stored(Circuit(state), float(since))
    except ValueError:
        return Stored()


def encode(stored: Stored) -> str:
    return f"{stored.state.value}:{stored.since:.3f}"
