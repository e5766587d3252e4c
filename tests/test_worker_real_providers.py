"""A real worker calling Mistral and OpenAI through their SDKs, at a loopback server.

The worker is a subprocess with provider keys in its environment and both base URLs
pointing at `tests.llm_server`; the test tells the server how each model answers and
counts the HTTP requests it received.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from producers.client import submit
from tests.catalogs import GPT_4O, GPT_4O_MINI, MISTRAL_LARGE, MISTRAL_SMALL, Tier, catalog_toml
from tests.llm_server import LLMServer
from tests.support import RunningWorker
from worker.keys import CONFIG_TTL_S

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
SMALL, MINI = MISTRAL_SMALL.name, GPT_4O_MINI.name
LARGE, BIG = MISTRAL_LARGE.name, GPT_4O.name
MODELS = (SMALL, MINI, LARGE, BIG)
HELLO = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]
BUDGET = 3
SMALL_TIMEOUT_S = 1.0
MISTRAL_KEY = f"sk-test-mistral-{secrets.token_hex(8)}"
OPENAI_KEY = f"sk-test-openai-{secrets.token_hex(8)}"

CATALOG = catalog_toml(
    Tier("small", (MISTRAL_SMALL, GPT_4O_MINI), max_tokens=3000, timeout_s=SMALL_TIMEOUT_S),
    Tier("large", (MISTRAL_LARGE, GPT_4O), timeout_s=5.0),
)


def real_env(server: LLMServer, catalog: Path, **keys: str) -> dict[str, str]:
    return {
        **keys,
        "TIERLINE_MISTRAL_BASE_URL": server.url,
        "TIERLINE_OPENAI_BASE_URL": f"{server.url}/v1",
        "TIERLINE_CATALOG_PATH": str(catalog),
        "TIERLINE_ATTEMPT_BUDGET": str(BUDGET),
    }


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "mixed.toml"
    path.write_text(CATALOG)
    return path


@pytest.fixture(scope="module")
def real_worker(
    worker_factory: WorkerFactory, llm_server: LLMServer, catalog_file: Path
) -> Iterator[RunningWorker]:
    env = real_env(llm_server, catalog_file, MISTRAL_API_KEY=MISTRAL_KEY, OPENAI_API_KEY=OPENAI_KEY)
    with worker_factory(env=env) as running:
        yield running
    log = running.log()
    assert MISTRAL_KEY not in log and OPENAI_KEY not in log


@pytest.fixture(autouse=True)
def fresh(real_worker: RunningWorker, llm_server: LLMServer) -> Iterator[None]:
    llm_server.reset()
    real_worker.redis.delete(*[real_worker.keys.busy(m) for m in MODELS])
    yield
    # Whatever happened, one job never made more calls than its attempt budget.
    assert llm_server.count() <= BUDGET


def busy_ms(worker: RunningWorker, model: str) -> int:
    return int(worker.redis.pttl(worker.keys.busy(model)))


def no_key_in(text: str) -> bool:
    return MISTRAL_KEY not in text and OPENAI_KEY not in text


def test_worker_says_it_uses_the_real_providers(real_worker: RunningWorker, llm_server: LLMServer) -> None:
    log = real_worker.log()
    assert f"providers real: mistral (2 models, {llm_server.url})" in log
    assert f"openai (2 models, {llm_server.url}/v1)" in log


def test_job_is_served_by_mistral_with_its_usage_and_cost(
    real_worker: RunningWorker, llm_server: LLMServer
) -> None:
    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.ok and result.content, result.error
    assert (result.tier, result.model, result.provider) == ("small", SMALL, "mistral")
    [seen] = llm_server.requests(SMALL)
    assert seen.authorization == f"Bearer {MISTRAL_KEY}"
    usage_in = sum(len(m["content"].split()) + 4 for m in HELLO)
    assert (result.tokens_in, result.tokens_out) == (usage_in, len(result.content.split()))
    assert result.cost_usd == pytest.approx((result.tokens_in * 0.20 + result.tokens_out * 0.60) / 1e6)
    assert no_key_in(result.model_dump_json())


def test_rate_limit_flags_small_for_retry_after_and_the_next_candidate_serves(
    real_worker: RunningWorker, llm_server: LLMServer
) -> None:
    llm_server.fail(SMALL, 429, headers={"Retry-After": "7"})

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.ok and (result.model, result.provider) == (MINI, "openai")
    assert [(a.model, a.error_code) for a in result.attempts] == [(SMALL, "rate_limited"), (MINI, None)]
    assert 5_500 < busy_ms(real_worker, SMALL) <= 7_000
    assert (llm_server.count(SMALL), llm_server.count(MINI)) == (1, 1)


def test_rejected_key_moves_traffic_to_the_other_providers_model_in_the_same_tier(
    real_worker: RunningWorker, llm_server: LLMServer
) -> None:
    llm_server.reject_key(MISTRAL_KEY)

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.ok and (result.tier, result.model) == ("small", MINI)
    assert [(a.model, a.outcome, a.error_code) for a in result.attempts] == [
        (SMALL, "configuration", "authentication_failed"), (MINI, "ok", None)]
    assert busy_ms(real_worker, SMALL) > (CONFIG_TTL_S - 60) * 1000
    log = real_worker.log()
    assert "rejected the API key from MISTRAL_API_KEY" in log and no_key_in(log)
    assert no_key_in(result.model_dump_json())


def test_bad_request_fails_the_job_without_flagging(real_worker: RunningWorker, llm_server: LLMServer) -> None:
    llm_server.fail(SMALL, 400, body='{"object": "error", "message": "Invalid role: wizard"}')

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.status == "failed" and result.error is not None
    assert result.error.code == "invalid_request" and "Invalid role: wizard" in result.error.message
    assert [a.error_kind for a in result.attempts] == ["bad_request"]
    assert all(busy_ms(real_worker, m) == -2 for m in MODELS)
    assert llm_server.count() == 1


def test_slow_model_times_out_within_its_attempt_timeout(
    real_worker: RunningWorker, llm_server: LLMServer
) -> None:
    llm_server.slow(SMALL, 5.0)

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.ok and result.model == MINI
    first = result.attempts[0]
    assert (first.model, first.error_code) == (SMALL, "provider_timeout")
    assert SMALL_TIMEOUT_S * 1000 <= first.latency_ms < SMALL_TIMEOUT_S * 1000 + 500


def test_malformed_answer_is_transient_for_that_model_only(
    real_worker: RunningWorker, llm_server: LLMServer
) -> None:
    llm_server.malformed(SMALL)

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.ok and result.model == MINI
    assert result.attempts[0].error_code == "malformed_response"
    assert 55_000 < busy_ms(real_worker, SMALL) <= 60_000


def test_answer_without_usage_is_counted_and_priced(real_worker: RunningWorker, llm_server: LLMServer) -> None:
    llm_server.no_usage(MINI)

    result = submit(HELLO, app=real_worker.app, pin_model=MINI).result(timeout=30)

    assert result.ok and result.model == MINI
    assert result.tokens_in > 0 and result.tokens_out > 0
    assert result.cost_usd == pytest.approx((result.tokens_in * 0.15 + result.tokens_out * 0.60) / 1e6)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_job_never_makes_more_requests_than_its_attempt_budget(
    real_worker: RunningWorker, llm_server: LLMServer, status: int
) -> None:
    for model in MODELS:
        llm_server.fail(model, status)

    result = submit(HELLO, app=real_worker.app).result(timeout=30)

    assert result.status == "failed" and result.error is not None
    assert result.error.code == "budget_exhausted"
    assert llm_server.count() == BUDGET == len(result.attempts)


def test_models_whose_key_is_missing_are_never_planned(
    worker_factory: WorkerFactory, llm_server: LLMServer, catalog_file: Path
) -> None:
    llm_server.reset()
    llm_server.fail(SMALL, 503)
    with worker_factory(env=real_env(llm_server, catalog_file, MISTRAL_API_KEY=MISTRAL_KEY)) as w:
        result = submit(HELLO, app=w.app).result(timeout=30)
        log = w.log()

    assert "left out, OPENAI_API_KEY not set: gpt-4o-mini, gpt-4o" in log
    assert result.ok and result.model == LARGE  # not gpt-4o-mini, which has no key here
    assert llm_server.count(MINI) == llm_server.count(BIG) == 0
    assert json.loads(result.model_dump_json())["provider"] == "mistral"
