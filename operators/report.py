"""`tierline report`: what the workers did in a time window, from the series in Redis.

It reads only Redis (the bucket index, then every bucket hash of the window in one
pipeline), so it works on the embedded default and on any number of hosts. The
percentiles come from the latency histograms (each bucket bound 20 % above the last,
interpolated inside a bucket as Prometheus' ``histogram_quantile`` does): close to the
exact ones, not equal. Counts and costs are exact.

`Report` is a plain dataclass tree: a new section is a new field (and a table in
`report_view`), and ``to_json`` carries it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from worker import series as S
from worker.budget import read_spend, utc_day
from worker.keys import Keys
from worker.overlay import Budget
from worker.overlay_store import OverlayStore

QUANTILES = (0.5, 0.95, 0.99)
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "15m", "1h", "2d" (a bare number: seconds); ValueError otherwise."""
    text = text.strip().lower()
    unit = _UNITS_S.get(text[-1:]) if text else None
    value = float(text[:-1] if unit else text)
    if value <= 0:
        raise ValueError(f"a duration must be positive: {text!r}")
    return value * (unit or 1)


@dataclass(frozen=True)
class Bucket:
    """One time bucket of flushed series: its start (Unix s), width (s) and fields."""

    start: int
    width_s: int
    fields: dict[str, float]


def read_buckets(client: redis.Redis, keys: Keys, *, since_s: float, now: float | None = None) -> list[Bucket]:
    """The buckets that overlap the last `since_s` seconds, oldest first."""
    now = time.time() if now is None else now
    names: list[bytes] = client.zrangebyscore(keys.series_index, now - since_s - 3600, "+inf")  # type: ignore[assignment]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    out = []
    for name, raw in zip(names, pipe.execute() if names else [], strict=True):
        width, start = (int(p) for p in name.decode().rsplit(":", 2)[-2:])
        if raw and start + width > now - since_s:
            out.append(Bucket(start, width, {k.decode(): float(v) for k, v in raw.items()}))
    return sorted(out, key=lambda b: b.start)


@dataclass
class Latency:
    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass
class TimePoint:
    """Jobs served per tier (and failed) in one time bucket."""

    start: float
    width_s: int
    served: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    busy_models: list[str] = field(default_factory=list)  # flagged busy in this bucket


@dataclass
class Budgeted:
    """A team's (or "*": all spend's) daily budget and what it spent today."""

    usd_per_day: float
    action: str
    spent_today_usd: float
    used: float  # spent / budget: 1 and over, the action applies


@dataclass
class ShadowSide:
    pass_rate: float
    cost_usd: float
    mean_latency_ms: float


@dataclass
class ShadowComparison:
    """Shadowed jobs of one shadow model: the live side and the shadow side of the same jobs."""

    jobs: int
    live: ShadowSide
    shadow: ShadowSide
    shadow_errors: int


@dataclass
class Report:
    since_s: float
    start: float | None = None
    end: float | None = None
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    served_by_tier: dict[str, int] = field(default_factory=dict)
    tier_share: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    all_large_cost_usd: float = 0.0
    saved_fraction: float | None = None
    cost_by_model: dict[str, float] = field(default_factory=dict)
    jobs_fell_back: int = 0
    failed_provider_attempts: int = 0
    attempts_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    escalations: int = 0
    escalations_by_route: dict[str, int] = field(default_factory=dict)
    failures_by_code: dict[str, int] = field(default_factory=dict)
    latency: Latency = field(default_factory=Latency)
    latency_by_tier: dict[str, Latency] = field(default_factory=dict)
    latency_by_model: dict[str, Latency] = field(default_factory=dict)
    busy_seconds_by_model: dict[str, float] = field(default_factory=dict)
    busy_marks_by_model: dict[str, int] = field(default_factory=dict)
    teams: dict[str, dict[str, float]] = field(default_factory=dict)
    # Daily budgets (live control) against today's spend (UTC day, as budgets count it).
    budgets: dict[str, Budgeted] = field(default_factory=dict)
    # Shadow routing in the window: the same jobs, live against shadow, per shadow model.
    shadow: dict[str, ShadowComparison] = field(default_factory=dict)
    redeliveries: int = 0
    timeline: list[TimePoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The `q` quantile of histogram `buckets` (upper bound → count, not cumulative)."""
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank, running, lower = q * total, 0.0, 0.0
    finite = [b for b in sorted(buckets) if not math.isinf(b)]
    for bound in sorted(buckets):
        count = buckets[bound]
        if running + count >= rank and count > 0:
            if math.isinf(bound):
                return finite[-1] if finite else lower
            return lower + (bound - lower) * (rank - running) / count
        running += count
        lower = bound
    return finite[-1] if finite else None


def _latency(buckets: Mapping[float, float]) -> Latency:
    values = [quantile(q, buckets) for q in QUANTILES]
    ms = [round(v * 1000, 1) if v is not None else None for v in values]
    return Latency(int(sum(buckets.values())), *ms)


class _Sums:
    """The window's fields summed, grouped by series and labels."""

    def __init__(self, buckets: Iterable[Bucket]) -> None:
        self.counters: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        self.histograms: dict[str, list[tuple[dict[str, str], float, float]]] = defaultdict(list)
        for bucket in buckets:
            for name, value in bucket.fields.items():
                parsed = S.parse(name)
                if parsed is None:
                    continue
                if parsed.series.kind is S.Kind.COUNTER:
                    self.counters[parsed.series.name].append((parsed.labels, value))
                elif parsed.part == "_bucket" and parsed.le is not None:
                    self.histograms[parsed.series.name].append((parsed.labels, parsed.le, value))

    def total(self, series: S.Series, **match: str) -> float:
        return sum(v for labels, v in self.counters[series.name] if _matches(labels, match))

    def by(self, series: S.Series, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for labels, value in self.counters[series.name]:
            if _matches(labels, match):
                out[labels.get(label, "")] += value
        return dict(out)

    def histogram_by(self, series: S.Series, label: str | None, **match: str) -> dict[str, dict[float, float]]:
        out: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for labels, le, value in self.histograms[series.name]:
            if _matches(labels, match):
                out[labels.get(label, "") if label else ""][le] += value
        return out


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def build_report(buckets: list[Bucket], *, since_s: float) -> Report:
    """The report over `buckets` (from `read_buckets`)."""
    sums = _Sums(buckets)
    report = Report(since_s=since_s)
    if buckets:
        report.start, report.end = buckets[0].start, buckets[-1].start + buckets[-1].width_s
    _jobs(report, sums)
    _cost(report, sums)
    _routing(report, sums)
    _latencies(report, sums)
    _shadow(report, sums)
    report.timeline = [_point(b) for b in buckets]
    return report


def _ints(values: Mapping[str, float]) -> dict[str, int]:
    return {k: int(round(v)) for k, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0])) if v}


def _jobs(report: Report, sums: _Sums) -> None:
    report.jobs = int(sums.total(S.JOBS))
    report.succeeded = int(sums.total(S.JOBS, status="succeeded"))
    report.failed = int(sums.total(S.JOBS, status="failed"))
    report.served_by_tier = _ints(sums.by(S.JOBS, "tier", status="succeeded"))
    report.tier_share = {t: round(n / report.jobs, 4) for t, n in report.served_by_tier.items() if report.jobs}
    report.failures_by_code = _ints(sums.by(S.JOBS, "code", status="failed"))
    report.redeliveries = int(sum(v for k, v in sums.by(S.DELIVERIES, "delivery").items() if k not in ("1", "unknown")))


def _cost(report: Report, sums: _Sums) -> None:
    report.cost_usd = sums.total(S.COST)
    report.all_large_cost_usd = sums.total(S.ALL_LARGE_COST)
    if report.all_large_cost_usd:
        report.saved_fraction = round(1 - report.cost_usd / report.all_large_cost_usd, 4)
    report.cost_by_model = dict(sorted(sums.by(S.COST, "model").items(), key=lambda kv: -kv[1]))
    jobs, cost = sums.by(S.TEAM_JOBS, "team"), sums.by(S.TEAM_COST, "team")
    report.teams = {t: {"jobs": int(jobs[t]), "cost_usd": cost.get(t, 0.0)} for t in sorted(jobs)}


def _routing(report: Report, sums: _Sums) -> None:
    report.jobs_fell_back = int(sums.total(S.JOBS_FELL_BACK))
    report.failed_provider_attempts = int(sums.total(S.FALLBACKS))
    by_model: dict[str, dict[str, int]] = defaultdict(dict)
    for labels, value in sums.counters[S.ATTEMPTS.name]:
        outcomes = by_model[labels.get("model", "")]
        outcomes[labels.get("outcome", "")] = outcomes.get(labels.get("outcome", ""), 0) + int(value)
    report.attempts_by_model = dict(sorted(by_model.items()))
    report.escalations = int(sums.total(S.ESCALATIONS))
    routes: dict[str, float] = defaultdict(float)
    for labels, value in sums.counters[S.ESCALATIONS.name]:
        routes[f"{labels.get('from_tier')}→{labels.get('to_tier')} ({labels.get('check')})"] += value
    report.escalations_by_route = _ints(routes)
    busy = sums.by(S.BUSY_SECONDS, "model")
    report.busy_seconds_by_model = {m: round(s, 1) for m, s in sorted(busy.items(), key=lambda kv: -kv[1])}
    report.busy_marks_by_model = _ints(sums.by(S.BUSY_MARKS, "model"))


def _latencies(report: Report, sums: _Sums) -> None:
    report.latency = _latency(sums.histogram_by(S.JOB_LATENCY, None).get("", {}))
    tiers = sums.histogram_by(S.JOB_LATENCY, "tier", status="succeeded")
    report.latency_by_tier = {t: _latency(b) for t, b in sorted(tiers.items())}
    models = sums.histogram_by(S.JOB_LATENCY, "model", status="succeeded")
    report.latency_by_model = {m: _latency(b) for m, b in sorted(models.items())}


def _shadow(report: Report, sums: _Sums) -> None:
    for model, jobs in sorted(sums.by(S.SHADOW_JOBS, "model").items()):
        if not jobs:
            continue
        sides = [ShadowSide(round(sums.total(S.SHADOW_PASSED, model=model, side=side) / jobs, 4),
                            sums.total(S.SHADOW_COST, model=model, side=side),
                            round(sums.total(S.SHADOW_SECONDS, model=model, side=side) / jobs * 1000, 1))
                 for side in ("live", "shadow")]
        report.shadow[model] = ShadowComparison(int(jobs), sides[0], sides[1],
                                                int(sums.total(S.SHADOW_ERRORS, model=model)))


def with_budgets(report: Report, budgets: Mapping[str, Budget], spend: Mapping[str, float]) -> Report:
    """`report` with each budget of live control and today's spend against it."""
    report.budgets = {
        team: Budgeted(b.usd_per_day, b.action, spend.get(team, 0.0),
                       round(spend.get(team, 0.0) / b.usd_per_day, 4))
        for team, b in sorted(budgets.items())
    }
    return report


def _point(bucket: Bucket) -> TimePoint:
    sums = _Sums([bucket])
    return TimePoint(bucket.start, bucket.width_s, _ints(sums.by(S.JOBS, "tier", status="succeeded")),
                     int(sums.total(S.JOBS, status="failed")), sorted(_ints(sums.by(S.BUSY_MARKS, "model"))))


def report_from_redis(client: redis.Redis, keys: Keys, *, since_s: float) -> Report:
    """Read the window's buckets and build its report, with the budgets and today's spend.

    `client`: the routing-state Redis (the workers' metrics, overlay and spend live there,
    wherever the results are stored)."""
    report = build_report(read_buckets(client, keys, since_s=since_s), since_s=since_s)
    store = OverlayStore(client, keys)
    budgets = store.version(store.current_number()).overlay.budgets
    return with_budgets(report, budgets, read_spend(client, keys, sorted(budgets), utc_day(time.time())))


def counted_jobs(client: redis.Redis, keys: Keys) -> int:
    """Jobs the flushed cumulative series count so far."""
    raw: dict[bytes, bytes] = client.hgetall(keys.series_total)  # type: ignore[assignment]
    return int(sum(float(v) for k, v in raw.items() if k.decode().startswith(S.JOBS.name + "|")))


def wait_for_jobs(client: redis.Redis, keys: Keys, at_least: int, *, timeout_s: float = 10.0) -> bool:
    """Wait until the flushed series count `at_least` jobs (workers flush every second)."""
    deadline = time.monotonic() + timeout_s
    while counted_jobs(client, keys) < at_least:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
