"""Models this worker cannot call (their provider has no key) are never tried, escalated to,
or blamed on the context: a router and an extractor in this process, on the session's Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from contract.schemas import Carry, ExtractionJob, Job, JobResult
from worker.catalog import load_catalog
from worker.extractor import Extractor
from worker.keys import Keys
from worker.metrics import Metrics
from worker.providers.simulated import Behaviour, Script, SimulatedProvider
from worker.record import JobRecord
from worker.redis_pool import Client
from worker.router import Escalate, Router, RouterConfig
from worker.state import RoutingState
from worker.tokens import TokenCounter

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"
ASK = {"messages": [{"role": "user", "content": "Which clause covers late delivery?"}]}
REFUSING_SMALL = Script(models={SMALL: Behaviour(poor_rate=1.0, poor="refusal")})
PREFIX = "uncallable-test:"


@pytest.fixture(scope="module")
def client(module_db_url: str) -> Iterator[redis.Redis]:
    connection = Client.from_url(module_db_url)
    yield connection
    keys = list(connection.scan_iter(f"{PREFIX}*"))
    if keys:
        connection.delete(*keys)
    connection.close()


def router_with(client: redis.Redis, callable_models: set[str], script: Script = REFUSING_SMALL) -> Router:
    catalog, counter, metrics = load_catalog(), TokenCounter(), Metrics()
    provider = SimulatedProvider(lambda: script, counter)
    return Router(
        catalog=catalog, providers={m: provider for m in callable_models},
        state=RoutingState(client, Keys(PREFIX), metrics), counter=counter, metrics=metrics,
        config=RouterConfig(backoff_s=0),
    )


def record(job_id: str) -> JobRecord:
    return JobRecord(job_id, Carry(started_at=time.time()), deadline=time.monotonic() + 10)


def test_a_poor_answer_escalates_past_a_tier_this_worker_cannot_call(client: redis.Redis) -> None:
    # Given small refuses, and medium has no key here
    router = router_with(client, {SMALL, LARGE})
    # When the job is routed
    decision = router.route(Job.model_validate(ASK), record("skip-medium"), frozenset())
    # Then it is re-queued straight to large, and the escalation says so
    assert isinstance(decision, Escalate)
    assert decision.carry.min_tier == 2
    assert [(e.from_tier, e.to_tier) for e in decision.carry.escalations] == [("small", "large")]


def test_a_poor_answer_with_no_callable_stronger_tier_fails_quality_with_its_answer(client: redis.Redis) -> None:
    router = router_with(client, {SMALL})
    decision = router.route(Job.model_validate(ASK), record("nowhere-to-go"), frozenset())
    assert isinstance(decision, JobResult) and decision.error is not None
    assert decision.error.code == "quality"
    assert decision.content is not None and "sorry" in decision.content
    assert [e.to_tier for e in decision.escalations] == [None]


def test_a_job_whose_fitting_models_cannot_be_called_is_not_called_too_long(client: redis.Redis) -> None:
    # Given a conversation of ~40K tokens: only medium and large hold it, and neither has a key
    router = router_with(client, {SMALL}, Script())
    long = {"messages": [{"role": "user", "content": "clause " * 40_000}]}
    decision = router.route(Job.model_validate(long), record("too-long-for-small"), frozenset())
    assert isinstance(decision, JobResult) and decision.error is not None
    assert decision.error.code == "model_unavailable"
    assert decision.attempts == []


def test_extraction_never_plans_a_model_this_worker_cannot_call(client: redis.Redis) -> None:
    # Given small has no key here, and a cheapest-first extraction
    router = router_with(client, {MEDIUM, LARGE}, Script())
    extractor = Extractor(router, RoutingState(client, Keys(PREFIX), Metrics()), TokenCounter(), Metrics())
    job = ExtractionJob.model_validate({
        "document": "The buyer, Acme, owes 1200 euros.", "policy": "cascade",
        "schema": {"type": "object", "properties": {"buyer": {"type": "string"}}, "required": ["buyer"]},
    })
    # When it runs
    result = extractor.start(job, record("extract-without-small"), frozenset())
    assert isinstance(result, JobResult)
    # Then medium answers: small is not tried, and nothing crashes
    assert result.ok, result.error
    assert [a.model for a in result.attempts] == [MEDIUM]
