"""The router's pure decisions between calls (`worker.fallback`), shared with `tierline replay`."""

from __future__ import annotations

import pytest

from worker import errors, fallback
from worker.catalog import load_catalog
from worker.keys import BUSY_TTL_S, CONFIG_TTL_S
from worker.plan import Route, plan


@pytest.mark.parametrize(("exc", "ends", "ttl"), [
    (errors.ProviderUnavailable("x", provider="p", model="m"), False, BUSY_TTL_S),
    (errors.ProviderTimeout("x", provider="p", model="m"), False, BUSY_TTL_S),
    (errors.RateLimited("x", provider="p", model="m", retry_after_s=7.0), False, 7.0),
    (errors.RateLimited("x", provider="p", model="m"), False, BUSY_TTL_S),
    (errors.AuthenticationFailed("x", provider="p", model="m"), False, CONFIG_TTL_S),
    (errors.InvalidRequest("x", provider="p", model="m"), True, None),
])
def test_a_failed_call_flags_its_model_as_its_kind_says(
    exc: errors.ProviderError, ends: bool, ttl: float | None
) -> None:
    decision = fallback.on_failure(exc)
    assert decision.ends_job is ends and decision.busy_ttl_s == ttl


def test_attempts_walk_the_plan_then_start_over() -> None:
    catalog = load_catalog()
    chosen = plan(Route(tokens=100, output_tokens=100, start_tier=0), frozenset(), catalog)
    names = [fallback.candidate_for(chosen, n).model.name for n in range(4)]
    assert names == [*(c.model.name for c in chosen.candidates), chosen.candidates[0].model.name]
    assert fallback.backoff_s(2, step_s=0.05, left_s=10) == pytest.approx(0.1)
    assert fallback.backoff_s(2, step_s=0.05, left_s=-1) == 0.0


def test_escalation_goes_one_tier_up_within_the_bound_and_never_for_a_pin() -> None:
    catalog = load_catalog()
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    assert fallback.escalation_tier(route, 0, 0, catalog, max_escalations=2) == 1
    assert fallback.escalation_tier(route, 0, 2, catalog, max_escalations=2) is None
    assert fallback.escalation_tier(route, 2, 0, catalog, max_escalations=2) is None
    pinned = Route(tokens=100, output_tokens=100, start_tier=0, pin_model="mistral-small-latest")
    assert fallback.escalation_tier(pinned, 0, 0, catalog, max_escalations=2) is None
