"""The router's pure decisions between calls: which candidate an attempt uses, what a
failed call does to its model, whether a poor answer goes up a tier.

The router applies them to real calls; `tierline replay` applies the same functions to
a simulated clock, so a replay routes exactly as the workers would.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from worker import errors
from worker.catalog import Catalog
from worker.keys import BUSY_TTL_S, CONFIG_TTL_S
from worker.plan import Candidate, Plan, Route, stronger_tier


@dataclass(frozen=True)
class OnFailure:
    """What a failed call means: `ends_job` (a bad request: no retry), and how long its
    model stays busy (`busy_ttl_s`, None: not flagged)."""

    ends_job: bool
    busy_ttl_s: float | None


def on_failure(exc: errors.ProviderError, *, busy_ttl_s: float = BUSY_TTL_S) -> OnFailure:
    """The decision for a call that raised `exc`: bad requests end the job unflagged,
    configuration failures disable the model for CONFIG_TTL_S, anything else flags it
    for its Retry-After (a 429) or `busy_ttl_s` (``TIERLINE_BUSY_TTL_S``)."""
    if isinstance(exc, errors.BadRequest):
        return OnFailure(ends_job=True, busy_ttl_s=None)
    if isinstance(exc, errors.ConfigurationError):
        return OnFailure(ends_job=False, busy_ttl_s=CONFIG_TTL_S)
    retry_after = exc.retry_after_s if isinstance(exc, errors.RateLimited) else None
    return OnFailure(ends_job=False, busy_ttl_s=retry_after or busy_ttl_s)


def candidate_for(chosen: Plan, attempt: int) -> Candidate:
    """The candidate attempt number `attempt` (0-based) calls: the plan in order, then
    again from the top while the budget lasts."""
    return chosen.candidates[attempt % len(chosen.candidates)]


def backoff_s(attempt: int, *, step_s: float, left_s: float) -> float:
    """The pause after failed attempt `attempt` (0-based): `step_s` per attempt made,
    never past the `left_s` seconds left before the deadline."""
    return min(step_s * attempt, max(0.0, left_s))


def escalation_tier(
    route: Route, tier: int, level: int, catalog: Catalog, *, max_escalations: int,
    available: Container[str] | None = None,
) -> int | None:
    """Where a poor answer from tier position `tier` goes: the next stronger tier that can
    take `route`, or None (a pinned job, `level` re-queues already made out of
    `max_escalations`, or no stronger tier fits): the job then fails `quality`."""
    if route.pin_model is not None or level >= max_escalations:
        return None
    return stronger_tier(route, tier, catalog, available=available)
