"""One fit predicate (`plan.fits`) and one start-tier clamp (`plan.first_tier`): the plan,
the escalation and the extractor's chunk sizing all decide with them."""

from __future__ import annotations

import ast
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from contract.schemas import Carry, ExtractionJob
from tests.support import ROOT
from tests.test_extraction_batch import CONTRACT, document, small_context_catalog
from worker.catalog import Catalog, parse_catalog
from worker.extractor import Extractor, Fanout
from worker.keys import Keys
from worker.metrics import Metrics
from worker.plan import Route, first_tier, fits, plan
from worker.providers.simulated import Script, SimulatedProvider
from worker.record import JobRecord
from worker.redis_pool import Client
from worker.router import Router, RouterConfig
from worker.state import RoutingState
from worker.tokens import TokenCounter

CONTEXTS = (2048, 4096, 8192)  # small, medium, large in `small_context_catalog`
OUTPUT = 256
PREFIX = "fit-test:"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(small_context_catalog())


@pytest.mark.parametrize(("start_tier", "min_tier", "expected"),
                         [(0, 0, 0), (0, 1, 1), (2, 1, 2), (1, 2, 2), (7, 0, 2)])
def test_the_first_tier_is_the_start_tier_raised_to_min_tier_within_the_catalog(
    start_tier: int, min_tier: int, expected: int, catalog: Catalog,
) -> None:
    route = Route(tokens=10, output_tokens=OUTPUT, start_tier=start_tier, min_tier=min_tier)
    assert first_tier(route, catalog) == expected


def test_a_model_fits_when_its_context_holds_the_conversation_and_output_and_it_can_be_called(catalog: Catalog) -> None:
    medium = catalog.tiers[1].models[0]
    route = Route(tokens=4096 - OUTPUT, output_tokens=OUTPUT, start_tier=0)
    assert fits(medium, route)
    assert not fits(medium, Route(tokens=route.tokens + 1, output_tokens=OUTPUT, start_tier=0))
    assert not fits(medium, route, available={"another-model"})


@pytest.mark.parametrize("tokens", [100, 1_800, 3_000, 6_000, 9_000])
@pytest.mark.parametrize(("start_tier", "min_tier"), [(0, 0), (1, 0), (2, 0), (0, 1), (2, 2)])
def test_the_plan_starts_at_the_first_tier_and_holds_exactly_the_models_that_fit(
    tokens: int, start_tier: int, min_tier: int, catalog: Catalog,
) -> None:
    route = Route(tokens=tokens, output_tokens=OUTPUT, start_tier=start_tier, min_tier=min_tier)
    chosen = plan(route, frozenset(), catalog).candidates
    allowed = [m.name for tier in catalog.tiers[min_tier:] for m in tier.models if fits(m, route)]
    assert sorted(c.model.name for c in chosen) == sorted(allowed)
    if chosen and fits(catalog.tiers[first_tier(route, catalog)].models[0], route):
        assert chosen[0].tier == first_tier(route, catalog)


@pytest.fixture(scope="module")
def client(module_db_url: str) -> Iterator[redis.Redis]:
    connection = Client.from_url(module_db_url)
    yield connection
    connection.close()


@pytest.mark.parametrize(("policy", "min_tier", "tier"),
                         [("cascade", None, 0), ("cascade", "medium", 1), ("tokens", None, 2), ("cascade", "large", 2)])
def test_the_extractor_sizes_chunks_for_the_first_tier_of_the_plan(
    policy: str, min_tier: str | None, tier: int, catalog: Catalog, client: redis.Redis,
) -> None:
    # Given a document of ~12K tokens and contexts of 2K / 4K / 8K
    counter, metrics = TokenCounter(), Metrics()
    state = RoutingState(client, Keys(PREFIX), metrics)
    provider = SimulatedProvider(lambda: Script(), counter)
    router = Router(catalog=catalog, providers={m: provider for m in catalog.model_names}, state=state,
                    counter=counter, metrics=metrics, config=RouterConfig(backoff_s=0))
    job = ExtractionJob.model_validate({"document": document(random.Random(3), 9_000), "schema": CONTRACT,
                                        "policy": policy, "min_tier": min_tier, "max_output_tokens": OUTPUT})
    # When the extractor plans it
    record = JobRecord("sized", Carry(started_at=time.time()), deadline=time.monotonic() + 10)
    started = Extractor(router, state, counter, metrics).start(job, record, frozenset())
    # Then its chunks fit the context of the plan's first tier, and would not fit the tier below
    assert isinstance(started, Fanout)
    largest = max(counter.text(chunk.document) for chunk in started.chunks)
    assert largest <= CONTEXTS[tier] - OUTPUT
    assert tier == 0 or largest > CONTEXTS[tier - 1] - OUTPUT


def test_the_fit_comparison_and_the_start_tier_clamp_are_written_once() -> None:
    # A context compared with a need, or a start tier clamped to min_tier, anywhere in the
    # worker: only in `fits` and `first_tier`.
    found = set()
    for path in (ROOT / "worker").rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef) and any(_fit_or_clamp(n) for n in ast.walk(function)):
                found.add(f"{Path(path).relative_to(ROOT)}:{function.name}")
    assert found == {"worker/plan.py:fits", "worker/plan.py:first_tier"}


def _fit_or_clamp(node: ast.AST) -> bool:
    attributes = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    if isinstance(node, ast.Compare):
        return "context_tokens" in attributes
    is_max = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "max"
    return is_max and {"start_tier", "min_tier"} <= attributes
