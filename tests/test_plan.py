"""The plan is a pure function: every ordering rule, without Redis or Celery."""

from __future__ import annotations

import pytest

from tests.catalogs import GPT_4O_MINI, MISTRAL_LARGE, MISTRAL_SMALL, Tier, catalog_toml
from worker.catalog import Catalog, load_catalog, parse_catalog
from worker.plan import Route, plan, stronger_tier
from worker.policies import POLICIES

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def names(route: Route, catalog: Catalog, busy: frozenset[str] = frozenset()) -> list[str]:
    return [c.model.name for c in plan(route, busy, catalog).candidates]


def start(tokens: int, catalog: Catalog) -> int:
    return POLICIES["tokens"].start_tier(tokens, catalog)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (10, [SMALL, MEDIUM, LARGE]),
        (3_000, [SMALL, MEDIUM, LARGE]),
        (3_001, [MEDIUM, LARGE, SMALL]),
        (12_000, [MEDIUM, LARGE, SMALL]),
        (12_001, [LARGE, MEDIUM, SMALL]),
    ],
)
def test_natural_tier_first_then_stronger_then_weaker(tokens: int, expected: list[str], catalog: Catalog) -> None:
    route = Route(tokens=tokens, output_tokens=0, start_tier=start(tokens, catalog))
    assert names(route, catalog) == expected


def test_busy_small_tier_falls_back_to_medium(catalog: Catalog) -> None:
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    assert names(route, catalog, frozenset({SMALL})) == [MEDIUM, LARGE]


def test_all_busy_tries_the_natural_tier_anyway(catalog: Catalog) -> None:
    route = Route(tokens=5_000, output_tokens=100, start_tier=1)
    result = plan(route, frozenset({SMALL, MEDIUM, LARGE}), catalog)
    assert result.all_busy
    assert [c.model.name for c in result.candidates] == [MEDIUM, LARGE, SMALL]


def test_model_whose_context_cannot_hold_conversation_plus_output_is_never_a_candidate(catalog: Catalog) -> None:
    # 31,000 tokens fit small's 32K window alone, not with a 2,000-token output budget.
    route = Route(tokens=31_000, output_tokens=2_000, start_tier=start(31_000, catalog))
    assert names(route, catalog) == [LARGE, MEDIUM]
    assert SMALL not in names(route, catalog, frozenset({MEDIUM, LARGE}))


def test_too_long_for_every_model_gives_an_empty_plan(catalog: Catalog) -> None:
    route = Route(tokens=130_000, output_tokens=100, start_tier=2)
    assert plan(route, frozenset(), catalog).empty


def test_min_tier_cuts_off_weaker_tiers(catalog: Catalog) -> None:
    route = Route(tokens=100, output_tokens=100, start_tier=0, min_tier=1)
    assert names(route, catalog) == [MEDIUM, LARGE]


def test_critical_jobs_start_and_stay_at_large(catalog: Catalog) -> None:
    # The router turns `critical` into min_tier = the strongest tier.
    route = Route(tokens=100, output_tokens=100, start_tier=0, min_tier=2)
    assert names(route, catalog) == [LARGE]
    assert names(route, catalog, frozenset({LARGE})) == [LARGE]


def test_pinned_model_is_the_only_candidate(catalog: Catalog) -> None:
    route = Route(tokens=100, output_tokens=100, start_tier=0, pin_model=LARGE)
    assert names(route, catalog) == [LARGE]


def test_pinned_model_that_cannot_fit_gives_an_empty_plan(catalog: Catalog) -> None:
    route = Route(tokens=40_000, output_tokens=100, start_tier=2, pin_model=SMALL)
    assert plan(route, frozenset(), catalog).empty


def test_models_inside_a_tier_are_tried_in_order_before_changing_tier() -> None:
    mixed = parse_catalog(catalog_toml(
        Tier("small", (MISTRAL_SMALL, GPT_4O_MINI), max_tokens=3000),
        Tier("large", (MISTRAL_LARGE,)),
    ))
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    assert names(route, mixed) == ["mistral-small-latest", "gpt-4o-mini", "mistral-large-latest"]
    assert names(route, mixed, frozenset({"mistral-small-latest"})) == ["gpt-4o-mini", "mistral-large-latest"]


def test_cascade_policy_starts_at_the_cheapest_tier(catalog: Catalog) -> None:
    assert POLICIES["cascade"].start_tier(20_000, catalog) == 0
    route = Route(tokens=20_000, output_tokens=100, start_tier=0)
    assert names(route, catalog) == [SMALL, MEDIUM, LARGE]


def test_a_quality_escalation_goes_to_the_next_tier_up(catalog: Catalog) -> None:
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    assert stronger_tier(route, 0, catalog) == 1
    assert stronger_tier(route, 1, catalog) == 2
    assert stronger_tier(route, 2, catalog) is None


def test_a_quality_escalation_passes_over_a_tier_that_cannot_take_the_job(catalog: Catalog) -> None:
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    # Given medium is not callable here (its provider has no key)
    assert stronger_tier(route, 0, catalog, available={SMALL, LARGE}) == 2
    # Given large is not callable either: there is nowhere stronger to go
    assert stronger_tier(route, 0, catalog, available={SMALL}) is None
    # Given a conversation too long for any context above small
    assert stronger_tier(Route(tokens=200_000, output_tokens=100, start_tier=0), 0, catalog) is None
