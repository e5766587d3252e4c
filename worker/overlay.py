"""The live overlay on the catalog: drains, thresholds, weights, limits, budgets, shadow.

An operator changes routing without a deploy (`tierline control ...`); each change
makes a new overlay, which is checked against the catalog file before it is stored
(`effective` raises `OverlayError` with the reason, as a bad catalog file stops a
worker). Everything here is pure: storing and reading versions is `worker.overlay_store`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.catalog import Catalog
from worker.errors import OverlayError
from worker.keys import GLOBAL_TEAM

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class RateLimit(BaseModel):
    """Calls and tokens a model may take per limit window (a minute), across every worker."""

    model_config = _FROZEN

    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)


BudgetAction = Literal["cheapest", "refuse"]


class Budget(BaseModel):
    """A daily spend limit (UTC day); at the limit jobs take the cheapest tier or are refused."""

    model_config = _FROZEN

    usd_per_day: float = Field(gt=0)
    action: BudgetAction = "cheapest"


class Shadow(BaseModel):
    """Send `share` of the jobs (0–1) also to `model`; its answer is recorded, never returned."""

    model_config = _FROZEN

    model: str = Field(min_length=1)
    share: float = Field(gt=0, le=1)


class Overlay(BaseModel):
    """What operators changed on top of the catalog file; empty means the file as it is.

    drained: models that take no traffic. thresholds: tier name → its max_tokens.
    weights: tier name → model → weight (the share of the tier's first place).
    limits: model → its shared rate limit. budgets: team (or "*" for all) → daily budget.
    """

    model_config = _FROZEN

    drained: tuple[str, ...] = ()
    thresholds: dict[str, int] = Field(default_factory=dict)
    weights: dict[str, dict[str, int]] = Field(default_factory=dict)
    limits: dict[str, RateLimit] = Field(default_factory=dict)
    budgets: dict[str, Budget] = Field(default_factory=dict)
    shadow: Shadow | None = None


EMPTY = Overlay()


def effective(overlay: Overlay, catalog: Catalog) -> Catalog:
    """The catalog `overlay` routes on (thresholds applied); raises OverlayError if invalid."""
    _known_models(overlay, catalog)
    _weights_valid(overlay, catalog)
    if overlay.shadow is not None and catalog.model(overlay.shadow.model) is None:
        raise OverlayError(f"shadow model {overlay.shadow.model!r} is not in the catalog")
    if not overlay.thresholds:
        return catalog
    tiers = {t.name for t in catalog.tiers}
    unknown = sorted(set(overlay.thresholds) - tiers)
    if unknown:
        raise OverlayError(f"unknown tier {unknown[0]!r}; known: {[t.name for t in catalog.tiers]}")
    data = catalog.model_dump()
    for tier in data["tiers"]:
        if tier["name"] in overlay.thresholds:
            tier["max_tokens"] = overlay.thresholds[tier["name"]]
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise OverlayError(f"thresholds: {exc.errors()[0]['msg']}") from exc


def _known_models(overlay: Overlay, catalog: Catalog) -> None:
    for model in (*overlay.drained, *overlay.limits):
        if catalog.model(model) is None:
            raise OverlayError(f"unknown model {model!r}; known: {list(catalog.model_names)}")
    if set(catalog.model_names) <= set(overlay.drained):
        raise OverlayError("that would drain every model of the catalog: nothing could serve a job")


def _weights_valid(overlay: Overlay, catalog: Catalog) -> None:
    for tier_name, weights in overlay.weights.items():
        try:
            tier = catalog.tiers[catalog.tier_index(tier_name)]
        except KeyError:
            raise OverlayError(f"unknown tier {tier_name!r}; known: {[t.name for t in catalog.tiers]}") from None
        names = {m.name for m in tier.models}
        strangers = sorted(set(weights) - names)
        if strangers:
            raise OverlayError(f"model {strangers[0]!r} is not in tier {tier_name!r}; its models: {sorted(names)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise OverlayError(f"weights of tier {tier_name!r} must be >= 0 and add up to more than 0")


# The changes an operator makes, each a pure step from one overlay to the next.

def drain(overlay: Overlay, model: str) -> Overlay:
    """`model` takes no new traffic (jobs already running on it finish)."""
    if model in overlay.drained:
        raise OverlayError(f"{model!r} is already drained")
    return overlay.model_copy(update={"drained": (*overlay.drained, model)})


def undrain(overlay: Overlay, model: str) -> Overlay:
    if model not in overlay.drained:
        raise OverlayError(f"{model!r} is not drained")
    return overlay.model_copy(update={"drained": tuple(m for m in overlay.drained if m != model)})


def set_threshold(overlay: Overlay, tier: str, tokens: int) -> Overlay:
    """Tier `tier` carries conversations up to `tokens` routed tokens."""
    return overlay.model_copy(update={"thresholds": {**overlay.thresholds, tier: tokens}})


def set_weights(overlay: Overlay, tier: str, weights: dict[str, int]) -> Overlay:
    """Split the first place of `tier` by `weights` (model → weight); empty: catalog order."""
    rest = {k: v for k, v in overlay.weights.items() if k != tier}
    return overlay.model_copy(update={"weights": {**rest, tier: weights} if weights else rest})


def set_limit(overlay: Overlay, model: str, limit: RateLimit | None) -> Overlay:
    """Share `limit` across every worker calling `model`; None removes it."""
    rest = {k: v for k, v in overlay.limits.items() if k != model}
    return overlay.model_copy(update={"limits": {**rest, model: limit} if limit else rest})


def set_budget(overlay: Overlay, team: str, budget: Budget | None) -> Overlay:
    """A daily budget for `team` ("*": all spend together); None removes it."""
    rest = {k: v for k, v in overlay.budgets.items() if k != team}
    return overlay.model_copy(update={"budgets": {**rest, team: budget} if budget else rest})


def set_shadow(overlay: Overlay, shadow: Shadow | None) -> Overlay:
    return overlay.model_copy(update={"shadow": shadow})


__all__ = [
    "EMPTY", "GLOBAL_TEAM", "Budget", "BudgetAction", "Overlay", "RateLimit", "Shadow", "drain", "effective",
    "set_budget", "set_limit", "set_shadow", "set_threshold", "set_weights", "undrain",
]
