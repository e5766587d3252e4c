"""The quality gate through a real worker: poor answers re-queue to stronger tiers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from producers.client import submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Outage, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"
ASK = [{"role": "user", "content": "Which clause of the supplier contract covers late delivery?"}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
# Valid JSON Schema that no answer satisfies: a string of at least 5 and at most 2 characters.
IMPOSSIBLE = {
    "type": "object",
    "properties": {"code": {"type": "string", "minLength": 5, "maxLength": 2}},
    "required": ["code"],
}


def poor(kind: str, *models: str) -> Script:
    return Script(models={m: Behaviour(poor_rate=1.0, poor=kind) for m in models})  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def calm(worker: RunningWorker) -> None:
    worker.script(Script())
    worker.redis.delete(*[worker.keys.busy(m) for m in (SMALL, MEDIUM, LARGE)])


def test_refusal_on_small_is_requeued_and_answered_by_medium_under_the_same_id(worker: RunningWorker) -> None:
    worker.script(poor("refusal", SMALL))
    handle = submit(ASK, app=worker.app, job_id="refused-once")
    result = handle.result(timeout=30)
    assert result.ok, result.error
    assert result.job_id == handle.id == "refused-once"
    assert (result.tier, result.model) == ("medium", MEDIUM)
    assert result.content is not None and result.content.startswith(f"Answer from {MEDIUM}")
    assert [(a.model, a.outcome, a.level) for a in result.attempts] == [(SMALL, "ok", 0), (MEDIUM, "ok", 1)]
    # Each generation says whether its answer was rejected, and by which check
    assert [a.rejected for a in result.attempts] == ["refusal", None]
    assert result.answer_tokens == (result.attempts[1].tokens_in, result.attempts[1].tokens_out)
    [escalation] = result.escalations
    assert (escalation.from_tier, escalation.to_tier, escalation.check) == ("small", "medium", "refusal")
    assert "i'm sorry, but i can't" in escalation.reason
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))
    assert result.attempts[0].cost_usd > 0


def test_broken_json_on_small_and_medium_is_fixed_by_large(worker: RunningWorker) -> None:
    worker.script(poor("broken_json", SMALL, MEDIUM))
    result = submit(ASK, app=worker.app, quality={"json_schema": PERSON}).result(timeout=30)
    assert result.ok, result.error
    assert result.tier == "large"
    assert set(result.parsed) == {"name", "age"} and isinstance(result.parsed["age"], int)
    assert [a.model for a in result.attempts] == [SMALL, MEDIUM, LARGE]
    assert [(e.from_tier, e.to_tier, e.check) for e in result.escalations] == [
        ("small", "medium", "invalid_json"), ("medium", "large", "invalid_json")]


def test_a_schema_nothing_satisfies_fails_with_reason_quality_after_the_bound(worker: RunningWorker) -> None:
    result = submit(ASK, app=worker.app, quality={"json_schema": IMPOSSIBLE}).result(timeout=30)
    assert not result.ok
    assert result.error is not None and result.error.code == "quality"
    assert "schema_mismatch" in result.error.message
    assert result.tier == "large" and result.content is not None and '"code"' in result.content
    assert [a.tier for a in result.attempts] == ["small", "medium", "large"]
    assert [e.to_tier for e in result.escalations] == ["medium", "large", None]
    assert {e.check for e in result.escalations} == {"schema_mismatch"}
    assert [a.rejected for a in result.attempts] == ["schema_mismatch"] * 3
    assert result.answer_tokens == (result.attempts[-1].tokens_in, result.attempts[-1].tokens_out)
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))


def test_a_critical_job_never_touches_small(worker: RunningWorker) -> None:
    worker.script(poor("refusal", SMALL))
    result = submit(ASK, app=worker.app, critical=True).result(timeout=30)
    assert result.ok and result.tier == "large"
    assert [a.model for a in result.attempts] == [LARGE]
    assert result.escalations == []


def test_provider_failures_and_quality_failures_stay_apart(worker: RunningWorker) -> None:
    now = time.time()
    worker.script(Script(models={
        SMALL: Behaviour(outages=(Outage(start=now - 1, end=now + 60),)),
        MEDIUM: Behaviour(poor_rate=1.0, poor="short"),
    }))
    result = submit(ASK, app=worker.app).result(timeout=30)
    assert result.ok and result.tier == "large"
    assert [(a.model, a.outcome) for a in result.attempts] == [
        (SMALL, "transient"), (MEDIUM, "ok"), (LARGE, "ok")]
    assert result.fallbacks == 1
    assert [(e.from_tier, e.check) for e in result.escalations] == [("medium", "too_short")]


def test_cascade_policy_starts_a_long_conversation_on_small(worker: RunningWorker) -> None:
    long_text = [{"role": "user", "content": " ".join(f"clause{i}" for i in range(2500))}]
    by_tokens = submit(long_text, app=worker.app).result(timeout=30)
    cascade = submit(long_text, app=worker.app, policy="cascade").result(timeout=30)
    assert (by_tokens.tier, by_tokens.policy) == ("medium", "tokens")
    assert (cascade.tier, cascade.policy) == ("small", "cascade")
    assert cascade.cost_usd < by_tokens.cost_usd


def test_a_pinned_model_is_not_escalated(worker: RunningWorker) -> None:
    worker.script(poor("refusal", SMALL))
    result = submit(ASK, app=worker.app, pin_model=SMALL).result(timeout=30)
    assert result.error is not None and result.error.code == "quality"
    assert [e.to_tier for e in result.escalations] == [None]


def test_invalid_schema_in_a_job_is_an_invalid_job_not_a_crash(worker: RunningWorker) -> None:
    result = submit(ASK, app=worker.app, quality={"json_schema": {"type": "objet"}}).result(timeout=30)
    assert result.error is not None and result.error.code == "invalid_schema"
    assert result.attempts == []


@pytest.fixture(scope="module")
def bounded(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    """A worker that escalates once at most and knows one pydantic output schema."""
    env = {"TIERLINE_MAX_ESCALATIONS": "1", "TIERLINE_SCHEMAS": "invoice=tests.output_models:Invoice"}
    with worker_factory(env=env) as running:
        yield running


def test_the_escalation_bound_is_a_setting(bounded: RunningWorker) -> None:
    bounded.script(poor("refusal", SMALL, MEDIUM))
    result = submit(ASK, app=bounded.app).result(timeout=30)
    assert result.error is not None and result.error.code == "quality"
    assert [a.model for a in result.attempts] == [SMALL, MEDIUM]
    assert result.content is not None and "sorry" in result.content


def test_a_pydantic_model_registered_in_the_worker_checks_the_answer(bounded: RunningWorker) -> None:
    bounded.script(Script())
    result = submit(ASK, app=bounded.app, quality={"schema_name": "invoice"}).result(timeout=30)
    assert result.ok, result.error
    assert set(result.parsed) == {"number", "total", "paid"}
    unknown = submit(ASK, app=bounded.app, quality={"schema_name": "receipt"}).result(timeout=30)
    assert unknown.error is not None and unknown.error.code == "unknown_schema"
    assert "invoice" in unknown.error.message and unknown.attempts == []
