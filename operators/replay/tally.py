"""Counting a replay as it streams: fixed-size state, whatever the number of requests.

Latency percentiles come from a log-bucketed histogram (2% wide buckets); the timeline
keeps at most `MAX_BUCKETS` time buckets, doubling their width when it would need more.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from operators.replay.engine import Served

_LOG_STEP = math.log(1.02)
MAX_BUCKETS = 240
ALL = "all"


@dataclass
class Histogram:
    """Latency counts in log buckets: percentiles to about 2%."""

    counts: Counter[int] = field(default_factory=Counter)
    total: int = 0

    def add(self, ms: float) -> None:
        self.counts[int(math.log(ms) / _LOG_STEP) if ms >= 1 else 0] += 1
        self.total += 1

    def percentile(self, q: float) -> float:
        """The `q` quantile (0..1) in milliseconds; 0 when empty."""
        if not self.total:
            return 0.0
        rank, seen = q * self.total, 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 0.5) * _LOG_STEP)
        return 0.0


@dataclass
class Group:
    """Counts for one slice of the workload (all of it, or one category)."""

    requests: int = 0
    served: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    first_pass: int = 0
    escalations: int = 0
    failed_calls: int = 0
    jobs_with_fallback: int = 0
    cost_usd: float = 0.0
    all_large_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    latency: Histogram = field(default_factory=Histogram)

    def add(self, s: Served) -> None:
        self.requests += 1
        if s.tier is not None:
            self.served[s.tier] += 1
        else:
            self.failures[s.error or "unknown"] += 1
        self.first_pass += s.escalations == 0 and s.tier is not None
        self.escalations += s.escalations
        self.failed_calls += s.failed_calls
        self.jobs_with_fallback += s.failed_calls > 0
        self.cost_usd += s.cost_usd
        self.all_large_usd += s.all_large_usd
        self.tokens_in += s.tokens_in
        self.tokens_out += s.tokens_out
        self.latency.add(s.latency_ms)

    def summary(self, tiers: list[str]) -> dict[str, Any]:
        """The numbers a report shows, as plain JSON."""
        n = max(1, self.requests)
        return {
            "requests": self.requests,
            "tier_share": {name: self.served[i] / n for i, name in enumerate(tiers)},
            "served": {name: self.served[i] for i, name in enumerate(tiers)},
            "cost_usd": self.cost_usd,
            "all_large_usd": self.all_large_usd,
            "cost_vs_all_large": self.cost_usd / self.all_large_usd if self.all_large_usd else None,
            "latency_p50_ms": self.latency.percentile(0.50),
            "latency_p95_ms": self.latency.percentile(0.95),
            "first_pass_rate": self.first_pass / n,
            "success_rate": sum(self.served.values()) / n,
            "user_visible_failures": sum(self.failures.values()),
            "failures": dict(self.failures),
            "escalations": self.escalations,
            "failed_calls": self.failed_calls,
            "jobs_with_fallback": self.jobs_with_fallback,
            "avg_tokens_in": self.tokens_in / n,
            "avg_tokens_out": self.tokens_out / n,
        }


@dataclass
class Timeline:
    """Requests served per tier per time bucket (seconds from the first request)."""

    width_s: float = 30.0
    buckets: dict[int, Counter[int]] = field(default_factory=dict)

    def add(self, offset_s: float, tier: int | None) -> None:
        key = int(offset_s // self.width_s)
        if key >= MAX_BUCKETS:
            self._widen(key)
            key = int(offset_s // self.width_s)
        self.buckets.setdefault(key, Counter())[-1 if tier is None else tier] += 1

    def _widen(self, key: int) -> None:
        while key >= MAX_BUCKETS:
            self.width_s *= 2
            key //= 2
            merged: dict[int, Counter[int]] = {}
            for k, counts in self.buckets.items():
                merged.setdefault(k // 2, Counter()).update(counts)
            self.buckets = merged

    def rows(self, tiers: list[str]) -> list[dict[str, Any]]:
        """One row per bucket: its start (seconds), then requests per tier and failed."""
        last = max(self.buckets, default=-1)
        rows = []
        for key in range(last + 1):
            counts = self.buckets.get(key, Counter())
            row: dict[str, Any] = {"start_s": key * self.width_s}
            row.update({name: counts[i] for i, name in enumerate(tiers)})
            row["failed"] = counts[-1]
            rows.append(row)
        return rows


@dataclass
class Tally:
    """A whole replay: all requests, each category, and the timeline."""

    tiers: list[str]
    overall: Group = field(default_factory=Group)
    categories: dict[str, Group] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)
    first_s: float | None = None
    last_s: float = 0.0

    def add(self, s: Served) -> None:
        if self.first_s is None:
            self.first_s = s.at_s
        self.last_s = max(self.last_s, s.at_s)
        self.overall.add(s)
        if s.category is not None:
            group = self.categories.get(s.category)
            if group is None:
                group = self.categories[s.category] = Group()
            group.add(s)
        self.timeline.add(s.at_s - self.first_s, s.tier)

    def summary(self) -> dict[str, Any]:
        """Everything, as plain JSON: overall, per category, the timeline."""
        return {
            **self.overall.summary(self.tiers),
            "first_at_s": self.first_s,
            "duration_s": self.last_s - (self.first_s or 0.0),
            "categories": {name: g.summary(self.tiers) for name, g in sorted(self.categories.items())},
            "timeline": {"width_s": self.timeline.width_s, "rows": self.timeline.rows(self.tiers)},
        }
