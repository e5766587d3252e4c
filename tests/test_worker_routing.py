"""A real worker routing jobs end to end on a real Redis."""

from __future__ import annotations

import time

import pytest

from producers.client import submit
from tests.support import RunningWorker
from worker.providers.simulated import Behaviour, Outage, Script

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"
HELLO = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]


@pytest.fixture(autouse=True)
def calm(worker: RunningWorker) -> None:
    worker.script(Script())
    worker.redis.delete(*[worker.keys.busy(m) for m in (SMALL, MEDIUM, LARGE)])


def test_short_conversation_is_served_by_the_small_tier_at_catalog_prices(worker: RunningWorker) -> None:
    result = submit(HELLO, app=worker.app).result(timeout=30)
    assert result.ok, result.error
    assert (result.tier, result.model, result.provider) == ("small", SMALL, "simulated")
    assert result.tokens_in > 0 and result.tokens_out > 0
    assert result.cost_usd == pytest.approx((result.tokens_in * 0.20 + result.tokens_out * 0.60) / 1e6)
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.routed_tokens >= result.tokens_in


def test_long_conversation_goes_to_its_natural_tier(worker: RunningWorker) -> None:
    words = " ".join(f"word{i}" for i in range(2500))  # about 5,000 tokens
    result = submit([{"role": "user", "content": words}], app=worker.app).result(timeout=30)
    assert result.tier == "medium"
    assert result.routed_tokens_exact and 3000 < result.routed_tokens <= 12000


def test_outage_of_small_falls_back_to_medium_and_flags_small(worker: RunningWorker) -> None:
    now = time.time()
    worker.script(Script(models={SMALL: Behaviour(outages=(Outage(start=now - 1, end=now + 60),))}))
    first = submit(HELLO, app=worker.app).result(timeout=30)
    assert first.ok
    assert [(a.model, a.outcome, a.error_code) for a in first.attempts] == [
        (SMALL, "transient", "unavailable"), (MEDIUM, "ok", None)]
    assert first.tier == "medium" and first.fallbacks == 1
    assert 55_000 < worker.redis.pttl(worker.keys.busy(SMALL)) <= 60_000
    # While the flag lasts, the next job skips small without trying it.
    second = submit(HELLO + [{"role": "user", "content": "again"}], app=worker.app).result(timeout=30)
    assert [a.model for a in second.attempts] == [MEDIUM]


def test_rate_limit_flags_the_model_for_its_retry_after(worker: RunningWorker) -> None:
    now = time.time()
    outage = Outage(start=now - 1, end=now + 60, error="rate_limited", retry_after_s=7)
    worker.script(Script(models={SMALL: Behaviour(outages=(outage,))}))
    result = submit(HELLO, app=worker.app).result(timeout=30)
    assert result.tier == "medium"
    assert 5_000 < worker.redis.pttl(worker.keys.busy(SMALL)) <= 7_000


def test_attempt_budget_bounds_retries_and_fallbacks(worker: RunningWorker) -> None:
    now = time.time()
    down = Behaviour(outages=(Outage(start=now - 1, end=now + 60),))
    worker.script(Script(default=down))
    result = submit(HELLO, app=worker.app).result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "budget_exhausted"
    assert [a.model for a in result.attempts] == [SMALL, MEDIUM, LARGE]


def test_configuration_failure_disables_the_model_longer_and_moves_on(worker: RunningWorker) -> None:
    worker.script(Script(models={SMALL: Behaviour(error_rate=1.0, error="auth")}))
    result = submit(HELLO, app=worker.app).result(timeout=30)
    assert result.ok and result.tier == "medium"
    assert result.attempts[0].error_kind == "configuration"
    assert worker.redis.pttl(worker.keys.busy(SMALL)) > 600_000
    assert "configuration failure" in worker.log()


def test_bad_request_fails_the_job_at_once_without_a_flag(worker: RunningWorker) -> None:
    worker.script(Script(models={SMALL: Behaviour(error_rate=1.0, error="bad_request")}))
    result = submit(HELLO, app=worker.app).result(timeout=30)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "invalid_request"
    assert len(result.attempts) == 1
    assert worker.redis.exists(worker.keys.busy(SMALL)) == 0


def test_critical_job_goes_straight_to_large(worker: RunningWorker) -> None:
    result = submit(HELLO, app=worker.app, critical=True).result(timeout=30)
    assert [a.model for a in result.attempts] == [LARGE]


def test_min_tier_and_pinned_model_are_respected(worker: RunningWorker) -> None:
    assert submit(HELLO, app=worker.app, min_tier="medium").result(timeout=30).tier == "medium"
    assert submit(HELLO, app=worker.app, pin_model=LARGE).result(timeout=30).model == LARGE


def test_same_job_id_resolves_to_one_result_without_a_second_call(worker: RunningWorker) -> None:
    first = submit(HELLO, app=worker.app, job_id="order-42-summary").result(timeout=30)
    again = submit(HELLO, app=worker.app, job_id="order-42-summary").result(timeout=30)
    assert again.job_id == first.job_id == "order-42-summary"
    assert again.attempts == first.attempts
    assert again.content == first.content
