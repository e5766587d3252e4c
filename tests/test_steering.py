"""Live steering and circuit decisions are pure functions: weights, demotion, probes, transitions."""

from __future__ import annotations

import pytest

from tests.catalogs import GPT_4O, GPT_4O_MINI, MISTRAL_LARGE, MISTRAL_SMALL, Tier, catalog_toml
from worker.catalog import Catalog, parse_catalog
from worker.circuit import Circuit, HealthLimits, Stored, Window, latency_bin, next_state, seen_as
from worker.plan import Route, plan
from worker.steering import Steering, steer

SMALL, MINI, LARGE, BIG = MISTRAL_SMALL.name, GPT_4O_MINI.name, MISTRAL_LARGE.name, GPT_4O.name


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(catalog_toml(
        Tier("small", (MISTRAL_SMALL, GPT_4O_MINI), max_tokens=3000),
        Tier("large", (MISTRAL_LARGE, GPT_4O)),
    ))


def first_choices(catalog: Catalog, steering: Steering, jobs: int) -> dict[str, int]:
    chosen = plan(Route(tokens=100, output_tokens=100, start_tier=0), frozenset(), catalog)
    counts: dict[str, int] = {}
    for n in range(jobs):
        first = steer(chosen, steering, key=f"job-{n}:0").candidates[0].model.name
        counts[first] = counts.get(first, 0) + 1
    return counts


def test_a_90_10_split_lands_within_3_points_over_1000_jobs(catalog: Catalog) -> None:
    counts = first_choices(catalog, Steering(weights={"small": {SMALL: 90, MINI: 10}}), 1000)
    assert abs(counts[MINI] / 1000 - 0.10) <= 0.03
    assert counts[SMALL] + counts[MINI] == 1000


def test_a_weighted_pick_keeps_the_others_as_fallbacks_in_order(catalog: Catalog) -> None:
    chosen = plan(Route(tokens=100, output_tokens=100, start_tier=0), frozenset(), catalog)
    steering = Steering(weights={"small": {MINI: 1}})
    assert [c.model.name for c in steer(chosen, steering, key="x").candidates] == [MINI, SMALL, LARGE, BIG]


def test_an_open_circuit_is_planned_after_every_healthy_model(catalog: Catalog) -> None:
    chosen = plan(Route(tokens=100, output_tokens=100, start_tier=0), frozenset(), catalog)
    steering = Steering(circuits={SMALL: Circuit.OPEN})
    assert [c.model.name for c in steer(chosen, steering, key="x").candidates] == [MINI, LARGE, BIG, SMALL]


def test_a_half_open_model_is_probed_by_a_bounded_share_of_jobs(catalog: Catalog) -> None:
    counts = first_choices(catalog, Steering(circuits={SMALL: Circuit.HALF_OPEN}, probe_share=0.05), 2000)
    assert 0.03 <= counts[SMALL] / 2000 <= 0.07


def test_an_open_model_gets_no_probe(catalog: Catalog) -> None:
    counts = first_choices(catalog, Steering(circuits={SMALL: Circuit.OPEN}, probe_share=0.5), 500)
    assert SMALL not in counts


LIMITS = HealthLimits(max_error_rate=0.2, min_samples=20, open_s=10, probe_samples=5)


def buckets(ok: int, errors: int, *, at: int = 100) -> dict[int, Window]:
    bins = [0] * 13
    bins[latency_bin(40)] = ok
    return {at: Window(ok, errors, tuple(bins))}


def test_thirty_percent_errors_open_a_closed_circuit() -> None:
    changed = next_state(Stored(), buckets(70, 30), 105.0, LIMITS, window_s=300, bucket_s=1)
    assert changed == Stored(Circuit.OPEN, 105.0)


def test_too_few_samples_decide_nothing() -> None:
    assert next_state(Stored(), buckets(7, 3), 105.0, LIMITS, window_s=300, bucket_s=1) is None


def test_latency_over_its_limit_opens_the_circuit() -> None:
    slow = HealthLimits(max_p95_ms=30, min_samples=20)
    assert next_state(Stored(), buckets(50, 0), 105.0, slow, window_s=300, bucket_s=1) is not None


def test_an_open_circuit_turns_half_open_after_open_s_and_closes_on_good_probes() -> None:
    opened = Stored(Circuit.OPEN, 100.0)
    assert seen_as(opened, 105.0, LIMITS) is Circuit.OPEN
    assert seen_as(opened, 110.0, LIMITS) is Circuit.HALF_OPEN
    # The errors that opened it (bucket 100) are not the probes' (buckets from 110 on).
    window = {**buckets(0, 30, at=100), **buckets(5, 0, at=111)}
    assert next_state(opened, window, 112.0, LIMITS, window_s=300, bucket_s=1) == Stored(Circuit.CLOSED, 112.0)


def test_bad_probes_open_the_circuit_again() -> None:
    window = buckets(2, 3, at=111)
    assert next_state(Stored(Circuit.OPEN, 100.0), window, 112.0, LIMITS, window_s=300,
                      bucket_s=1) == Stored(Circuit.OPEN, 112.0)


def test_a_closed_circuit_judges_only_samples_since_it_closed() -> None:
    window = {**buckets(0, 30, at=100), **buckets(20, 0, at=121)}
    assert next_state(Stored(Circuit.CLOSED, 120.0), window, 122.0, LIMITS, window_s=300, bucket_s=1) is None
