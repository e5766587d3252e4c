"""What one finished job adds to the metric series: derived from its JobResult alone.

Counting from the final JobResult (once per job, when it is stored) makes the metrics
equal the sums over the results: every attempt, escalation, token and cent is in it,
those of earlier deliveries of an escalated job included.
"""

from __future__ import annotations

import re
import threading

from contract.schemas import Attempt, JobResult
from worker import series as S
from worker.catalog import ModelSpec
from worker.metrics import Batch, Metrics
from worker.shadow import LiveSide, ShadowOutcome

NONE = "none"
OTHER = "other"
METRICS_MAX_TEAMS = 32
_TEAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


class TeamLabels:
    """Bounds `metadata.team` to a label: a configured set, or the first short names seen."""

    def __init__(self, allowed: str = "", *, limit: int = METRICS_MAX_TEAMS) -> None:
        self._allowed = frozenset(t.strip() for t in allowed.split(",") if t.strip())
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def label(self, team: object) -> str | None:
        """The label for a job's team, `other` past the bound; None when the job has none."""
        if team is None or team == "":
            return None
        name = str(team)
        if self._allowed:
            return name if name in self._allowed else OTHER
        if not _TEAM_NAME.fullmatch(name):
            return OTHER
        with self._lock:
            if name in self._seen or len(self._seen) < self._limit:
                self._seen.add(name)
                return name
        return OTHER


def record_result(metrics: Metrics, result: JobResult, *, baseline: ModelSpec, team: str | None) -> None:
    """Count `result`: the job, its attempts, escalations, tokens, cost, latency, team.

    The records are built at the next flush, off the job's path (the result is not changed
    after this)."""
    metrics.add_later(lambda: result_batch(result, baseline=baseline, team=team))


def result_batch(result: JobResult, *, baseline: ModelSpec, team: str | None) -> Batch:
    """What `result` adds to the series (a pure function of it)."""
    metrics = Batch()
    code = result.error.code if result.error else NONE
    tier = result.tier or NONE
    metrics.count(S.JOBS, (result.status, code, tier, result.policy or NONE))
    if result.fallbacks:
        metrics.count(S.JOBS_FELL_BACK, (tier,))
    metrics.observe(S.JOB_LATENCY, (result.model or NONE, tier, result.status), result.latency_ms / 1000)
    for escalation in result.escalations:
        metrics.count(S.ESCALATIONS, (escalation.from_tier, escalation.to_tier or NONE, escalation.check))
    for attempt in result.attempts:
        _record_attempt(metrics, attempt)
    metrics.count(S.ALL_LARGE_COST, (), baseline.cost_usd(*result.answer_tokens))
    if team is not None:
        metrics.count(S.TEAM_JOBS, (team,))
        metrics.count(S.TEAM_COST, (team,), result.cost_usd)
    return metrics


def _record_attempt(metrics: Batch, attempt: Attempt) -> None:
    metrics.count(S.ATTEMPTS, (attempt.model, attempt.provider, attempt.tier, attempt.outcome))
    genai = ("chat", attempt.provider, attempt.model)
    error_type = "" if attempt.outcome == "ok" else (attempt.error_code or attempt.outcome)
    metrics.observe(S.OPERATION_DURATION, (*genai, error_type), attempt.latency_ms / 1000)
    if attempt.outcome not in ("ok", "interrupted"):
        metrics.count(S.FALLBACKS, (attempt.model, attempt.tier, attempt.error_kind or attempt.outcome))
    if attempt.outcome == "ok":
        metrics.observe(S.TOKEN_USAGE, (*genai, "input"), attempt.tokens_in)
        metrics.observe(S.TOKEN_USAGE, (*genai, "output"), attempt.tokens_out)
        metrics.count(S.COST, (attempt.model, attempt.tier), attempt.cost_usd)


def shadow_batch(model: str, live: LiveSide, shadow: ShadowOutcome) -> Batch:
    """What one shadow comparison adds to the series (`worker.shadow`): both sides of it."""
    metrics = Batch().count(S.SHADOW_JOBS, (model,))
    for side, passed, cost, latency_ms in (("live", live.passed, live.cost_usd, live.latency_ms),
                                           ("shadow", shadow.passed, shadow.cost_usd, shadow.latency_ms)):
        metrics.count(S.SHADOW_PASSED, (model, side), float(passed))
        metrics.count(S.SHADOW_COST, (model, side), cost)
        metrics.count(S.SHADOW_SECONDS, (model, side), latency_ms / 1000)
    if shadow.failed:
        metrics.count(S.SHADOW_ERRORS, (model,))
    return metrics
