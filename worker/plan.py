"""The plan: a pure function from a job's routing facts to the ordered candidates.

Order: the start tier first, then stronger tiers (quality kept), then weaker tiers as
the last resort (better than a failure), never below `min_tier`. Inside a tier, models
in catalog order. Busy models are skipped; if that leaves nothing, every model that
fits is tried anyway. A model whose context window cannot hold the conversation plus
the output budget is never a candidate.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass

from worker.catalog import Candidate, Catalog, ModelSpec


@dataclass(frozen=True)
class Route:
    """What to plan for: routed tokens, output budget and the job's constraints."""

    tokens: int
    output_tokens: int
    start_tier: int
    min_tier: int = 0
    pin_model: str | None = None

    @property
    def need(self) -> int:
        """Context tokens a model needs for it: the conversation plus the output budget."""
        return self.tokens + self.output_tokens


@dataclass(frozen=True)
class Plan:
    """Ordered candidates; `all_busy` says the busy flags were ignored for lack of choice."""

    candidates: tuple[Candidate, ...]
    all_busy: bool = False

    @property
    def empty(self) -> bool:
        return not self.candidates


def plan(
    route: Route, busy: frozenset[str], catalog: Catalog, *, available: Container[str] | None = None
) -> Plan:
    """Order the candidates for `route`, skipping `busy` models, from `catalog`.

    available: the models this worker can call (None: all of them); the others, whose
    provider has no key, are never candidates, not even when everything is busy.
    """
    fitting = [c for c in _ordered(route, catalog) if fits(c.model, route, available)]
    free = tuple(c for c in fitting if c.model.name not in busy)
    if free or not fitting:
        return Plan(free)
    return Plan(tuple(fitting), all_busy=True)


def stronger_tier(
    route: Route, tier: int, catalog: Catalog, *, available: Container[str] | None = None
) -> int | None:
    """The first tier above `tier` with a model that can take `route`; None when there is none.

    A quality escalation goes there: a tier whose models cannot hold the conversation, or
    cannot be called by this worker (available, as for `plan`), is passed over.
    """
    for position in range(tier + 1, len(catalog.tiers)):
        if any(fits(m, route, available) for m in catalog.tiers[position].models):
            return position
    return None


def fits(model: ModelSpec, route: Route, available: Container[str] | None = None) -> bool:
    """Whether `model` can take `route`: its context holds the conversation plus the output
    budget, and this worker can call it (`available`; None: every model)."""
    return model.context_tokens >= route.need and (available is None or model.name in available)


def first_tier(route: Route, catalog: Catalog) -> int:
    """The tier the plan starts at: the policy's start tier, raised to `min_tier`, within the catalog."""
    return min(max(route.start_tier, route.min_tier), len(catalog.tiers) - 1)


def _ordered(route: Route, catalog: Catalog) -> Iterator[Candidate]:
    by_tier = catalog.candidates
    if route.pin_model is not None:
        yield from (c for tier in by_tier for c in tier if c.model.name == route.pin_model)
        return
    last = len(catalog.tiers) - 1
    start = first_tier(route, catalog)
    for tier in (*range(start, last + 1), *range(start - 1, route.min_tier - 1, -1)):
        yield from by_tier[tier]


__all__ = ["Candidate", "Plan", "Route", "first_tier", "fits", "plan", "stronger_tier"]
