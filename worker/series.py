"""The metric series every worker records and the exporter and the report read.

One table of series (name, kind, labels, histogram bounds) and the encoding of one
series' field in a Redis hash: ``name|label=value|...``. A histogram stores its
observations per bucket (``name_bucket|labels|le=<bound>``, not cumulative: only the
bucket a value lands in is written), ``name_sum|labels`` and ``name_count|labels``.

Label values are bounded vocabularies only: models and tiers of the catalog, outcome
and error codes, check names, queue names, team names from a bounded set. Never a job
id, a tenant-supplied string or text.

Names follow the OpenTelemetry GenAI semantic conventions where they apply (as the
Prometheus exporter of an OTel SDK would spell them: dots become underscores) and
``tierline_*`` for the rest.
"""

from __future__ import annotations

import bisect
import enum
import functools
import math
from dataclasses import dataclass


class Kind(enum.StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"  # computed by the exporter from live state, never recorded


def _geometric(low: float, high: float, factor: float) -> tuple[float, ...]:
    bounds, value = [], low
    while value < high * (1 + 1e-9):
        bounds.append(float(f"{value:.6g}"))
        value *= factor
    return tuple(bounds)


# The OTel GenAI conventions' advice for these two histograms.
TOKEN_BOUNDS = tuple(float(4**n) for n in range(14))
GENAI_DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# Fine enough for a report's p50/p95/p99 (each bound 20 % above the last).
LATENCY_BOUNDS = _geometric(0.005, 600.0, 1.2)
OVERHEAD_BOUNDS = _geometric(0.00005, 2.0, 1.5)


@dataclass(frozen=True, eq=False)  # module constants: identity is equality, and hashing is cheap
class Series:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    bounds: tuple[float, ...] = ()


_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

JOBS = Series("tierline_jobs_total", Kind.COUNTER, "Jobs ended, by status, error code, serving tier and policy.",
              ("status", "code", "tier", "policy"))
JOBS_FELL_BACK = Series("tierline_jobs_fell_back_total", Kind.COUNTER,
                        "Jobs that moved past at least one failed provider attempt, by serving tier.", ("tier",))
ATTEMPTS = Series("tierline_attempts_total", Kind.COUNTER, "Model calls, by model, provider, tier and outcome.",
                  ("model", "provider", "tier", "outcome"))
FALLBACKS = Series("tierline_fallbacks_total", Kind.COUNTER,
                   "Failed provider attempts that moved a job to the next candidate, by model and error kind.",
                   ("model", "tier", "kind"))
ESCALATIONS = Series("tierline_escalations_total", Kind.COUNTER,
                     "Answers the quality gate rejected, by from-tier, to-tier (none: the job failed) and check.",
                     ("from_tier", "to_tier", "check"))
COST = Series("tierline_cost_usd_total", Kind.COUNTER, "Cost of model calls in USD, by model and tier.",
              ("model", "tier"))
ALL_LARGE_COST = Series("tierline_all_large_cost_usd_total", Kind.COUNTER,
                        "What the answers used would have cost on the large tier's first model, in USD.")
TEAM_JOBS = Series("tierline_team_jobs_total", Kind.COUNTER, "Jobs ended, by metadata.team (a bounded set).",
                   ("team",))
TEAM_COST = Series("tierline_team_cost_usd_total", Kind.COUNTER, "Cost in USD by metadata.team (a bounded set).",
                   ("team",))
DELIVERIES = Series("tierline_deliveries_total", Kind.COUNTER,
                    "Task deliveries by task and delivery number (2 and up: redeliveries).", ("task", "delivery"))
BUSY_MARKS = Series("tierline_busy_marks_total", Kind.COUNTER, "Busy flags set or extended, by model and kind.",
                    ("model", "kind"))
BUSY_SECONDS = Series("tierline_busy_seconds_total", Kind.COUNTER,
                      "Seconds of busy time added to a model's flag (an extension counts what it adds).",
                      ("model",))
STATE_ERRORS = Series("tierline_state_errors_total", Kind.COUNTER,
                      "Routing-state reads (routing failed open) and writes that Redis refused.", ("op",))
SHADOW_JOBS = Series("tierline_shadow_jobs_total", Kind.COUNTER,
                     "Jobs also sent to the shadow model (live control), by shadow model.", ("model",))
SHADOW_PASSED = Series("tierline_shadow_passed_total", Kind.COUNTER,
                       "Shadowed jobs whose answer passed the quality gate at once, by shadow model and side "
                       "(live or shadow).", ("model", "side"))
SHADOW_ERRORS = Series("tierline_shadow_errors_total", Kind.COUNTER,
                       "Shadow calls that failed at the provider, by shadow model.", ("model",))
SHADOW_COST = Series("tierline_shadow_cost_usd_total", Kind.COUNTER,
                     "Cost in USD of shadowed jobs, by shadow model and side (live or shadow).", ("model", "side"))
SHADOW_SECONDS = Series("tierline_shadow_latency_seconds_total", Kind.COUNTER,
                        "Summed latency of shadowed jobs in seconds, by shadow model and side (live or shadow).",
                        ("model", "side"))
TOKEN_USAGE = Series("gen_ai_client_token_usage", Kind.HISTOGRAM, "Tokens per model call, input and output.",
                     (*_GENAI, "gen_ai_token_type"), TOKEN_BOUNDS)
OPERATION_DURATION = Series("gen_ai_client_operation_duration_seconds", Kind.HISTOGRAM,
                            "Duration of model calls in seconds (error_type set when the call failed).",
                            (*_GENAI, "error_type"), GENAI_DURATION_BOUNDS)
JOB_LATENCY = Series("tierline_job_latency_seconds", Kind.HISTOGRAM,
                     "Job latency from first delivery to result, by serving model, tier and status.",
                     ("model", "tier", "status"), LATENCY_BOUNDS)
ROUTING_OVERHEAD = Series("tierline_routing_overhead_seconds", Kind.HISTOGRAM,
                          "Time a delivery spends outside model calls (parse, count, plan, gate, record).",
                          ("task",), OVERHEAD_BOUNDS)
MODEL_BUSY = Series("tierline_model_busy", Kind.GAUGE, "1 while the model's busy flag is set.", ("model", "tier"))
MODEL_BUSY_LEFT = Series("tierline_model_busy_seconds_left", Kind.GAUGE, "Seconds left on the model's busy flag.",
                         ("model", "tier"))
QUEUE_DEPTH = Series("tierline_queue_depth", Kind.GAUGE, "Messages waiting in each queue.", ("queue",))
UNACKED = Series("tierline_unacked_messages", Kind.GAUGE,
                 "Messages delivered and not yet acknowledged (Redis broker).")

RECORDED: dict[str, Series] = {s.name: s for s in (
    JOBS, JOBS_FELL_BACK, ATTEMPTS, FALLBACKS, ESCALATIONS, COST, ALL_LARGE_COST, TEAM_JOBS, TEAM_COST,
    DELIVERIES, BUSY_MARKS, BUSY_SECONDS, STATE_ERRORS, TOKEN_USAGE, OPERATION_DURATION, JOB_LATENCY,
    ROUTING_OVERHEAD, SHADOW_JOBS, SHADOW_PASSED, SHADOW_ERRORS, SHADOW_COST, SHADOW_SECONDS,
)}
LIVE: dict[str, Series] = {s.name: s for s in (MODEL_BUSY, MODEL_BUSY_LEFT, QUEUE_DEPTH, UNACKED)}

Labels = tuple[str, ...]


def clean(value: object) -> str:
    """A label value safe in a field: the separators never appear in it."""
    return str(value).replace("|", "/").replace("=", ":")[:80]


@functools.lru_cache(maxsize=8192)
def field(series: Series, labels: Labels, suffix: str = "", le: float | None = None) -> str:
    """The hash field of one series (of a histogram's `suffix` part: _bucket, _sum, _count).

    Cached: label values are bounded, so the fields a worker writes are few and repeat.
    """
    parts = [series.name + suffix, *(f"{k}={clean(v)}" for k, v in zip(series.labels, labels, strict=True))]
    if le is not None:
        parts.append(f"le={format_bound(le)}")
    return "|".join(parts)


def format_bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_of(series: Series, value: float) -> float:
    """The upper bound of the histogram bucket `value` lands in (inf past the last)."""
    i = bisect.bisect_left(series.bounds, value)
    return series.bounds[i] if i < len(series.bounds) else math.inf


@dataclass(frozen=True)
class Parsed:
    """One decoded field: the series, its part (_bucket, _sum, _count or ""), labels, le."""

    series: Series
    part: str
    labels: dict[str, str]
    le: float | None


def parse(name: str) -> Parsed | None:
    """Decode a hash field; None for a field of a series this code does not know."""
    head, *rest = name.split("|")
    labels = dict(p.split("=", 1) for p in rest if "=" in p)
    le_raw = labels.pop("le", None)
    for part in ("_bucket", "_sum", "_count", ""):
        base = head.removesuffix(part) if part else head
        series = RECORDED.get(base)
        if series is not None and (part == "" or head.endswith(part)):
            if (part == "") != (series.kind is Kind.COUNTER):
                continue
            return Parsed(series, part, labels, float(le_raw) if le_raw is not None else None)
    return None
