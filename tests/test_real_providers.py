"""The Mistral and OpenAI providers, on their official SDKs, against a real loopback server.

Each test runs for both providers: the SDK client talks HTTP to `tests.llm_server`, and
nothing inside the SDKs is patched.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import SecretStr

from tests.llm_server import CHAT_PATH, LLMServer
from worker import errors
from worker.providers.base import ChatRequest, ChatResponse, Provider
from worker.providers.mistral import MistralProvider
from worker.providers.openai import OpenAIProvider
from worker.providers.rate_headers import Remaining

KEY = "sk-test-provider-5f1c0d2e9a"
MODEL = "some-model"
HELLO = ({"role": "user", "content": "What is the capital of France?"},)


@pytest.fixture(params=["mistral", "openai"])
def provider(request: pytest.FixtureRequest, llm_server: LLMServer) -> Iterator[Provider]:
    llm_server.reset()
    if request.param == "mistral":
        built: MistralProvider | OpenAIProvider = MistralProvider(
            "mistral", api_key=SecretStr(KEY), base_url=llm_server.url)
    else:
        built = OpenAIProvider("openai", api_key=SecretStr(KEY), base_url=f"{llm_server.url}/v1")
    yield built
    built.close()


def ask(provider: Provider, *, timeout_s: float = 2.0, **fields: object) -> ChatResponse:
    fields.setdefault("messages", HELLO)
    request = ChatRequest(model=MODEL, **fields)  # type: ignore[arg-type]
    return provider.chat(request, timeout_s=timeout_s)


def failure(provider: Provider, *, timeout_s: float = 2.0, **fields: object) -> errors.ProviderError:
    with pytest.raises(errors.ProviderError) as caught:
        ask(provider, timeout_s=timeout_s, **fields)
    return caught.value


def test_answer_carries_the_usage_the_server_reported(provider: Provider, llm_server: LLMServer) -> None:
    response = ask(provider, max_output_tokens=50, temperature=0.2)

    assert response.content.startswith(f"Answer from {MODEL} over loopback")
    # The server bills words: 6 in the question + 4 per message, and the answer's words.
    assert (response.tokens_in, response.tokens_out) == (10, len(response.content.split()))
    assert response.finish_reason == "stop"
    [seen] = llm_server.requests(MODEL)
    assert seen.path == CHAT_PATH
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.body["max_tokens"] == 50 and seen.body["temperature"] == 0.2
    assert seen.body["messages"] == list(HELLO)
    assert "response_format" not in seen.body


def test_json_mode_asks_for_a_json_object(provider: Provider, llm_server: LLMServer) -> None:
    ask(provider, json_mode=True)
    ask(provider, json_mode=True, messages=({"role": "user", "content": "Reply in JSON: name?"},))

    first, second = llm_server.requests(MODEL)
    assert first.body["response_format"] == {"type": "json_object"}
    # Both APIs refuse JSON mode unless the conversation asks for JSON: a system line does.
    assert first.body["messages"][0] == {"role": "system", "content": "Answer with a single JSON object."}
    assert second.body["messages"] == [{"role": "user", "content": "Reply in JSON: name?"}]


def test_connection_is_reused_across_calls(provider: Provider, llm_server: LLMServer) -> None:
    ask(provider)
    ask(provider)
    first, second = llm_server.requests(MODEL)
    assert first.peer_port == second.peer_port


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, errors.InvalidRequest, "invalid_request"),
        (422, errors.InvalidRequest, "invalid_request"),
        (401, errors.AuthenticationFailed, "authentication_failed"),
        (403, errors.AuthenticationFailed, "authentication_failed"),
        (404, errors.UnknownModel, "unknown_model"),
        (429, errors.RateLimited, "rate_limited"),
        (500, errors.ProviderUnavailable, "unavailable"),
        (503, errors.ProviderUnavailable, "unavailable"),
    ],
)
def test_status_maps_to_one_error_kind_after_exactly_one_request(
    provider: Provider, llm_server: LLMServer, status: int, kind: type[errors.ProviderError], code: str
) -> None:
    llm_server.fail(MODEL, status)

    error = failure(provider)

    assert type(error) is kind and error.code == code
    assert (error.provider, error.model) == (provider.name, MODEL)
    assert isinstance(error.__cause__, Exception)
    assert llm_server.count() == 1  # the SDK did not retry


def test_context_overflow_is_a_bad_request_of_its_own(provider: Provider, llm_server: LLMServer) -> None:
    llm_server.fail(MODEL, 400, body='{"error": {"message": "This model\'s maximum context length '
                                     'is 32000 tokens", "code": "context_length_exceeded"}}')
    error = failure(provider)
    assert isinstance(error, errors.ContextTooLong) and error.kind == "bad_request"
    assert "maximum context length" in str(error)


@pytest.mark.parametrize(
    ("headers", "expected_s"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": "<HTTP date in 30 s>"}, 30.0),
        ({"retry-after-ms": "4000", "Retry-After": "9"}, 4.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_rate_limit_reads_retry_after_in_seconds_or_as_a_date(
    provider: Provider, llm_server: LLMServer, headers: dict[str, str], expected_s: float | None
) -> None:
    if headers.get("Retry-After") == "<HTTP date in 30 s>":
        headers = {"Retry-After": formatdate(time.time() + 30, usegmt=True)}
    llm_server.fail(MODEL, 429, headers=headers)

    error = failure(provider)

    assert isinstance(error, errors.RateLimited)
    if expected_s is None:
        assert error.retry_after_s is None
    else:
        assert error.retry_after_s == pytest.approx(expected_s, abs=1.5)
    assert llm_server.count() == 1


def test_rejected_key_names_its_variable_and_never_the_key(provider: Provider, llm_server: LLMServer) -> None:
    # OpenAI's real 401 quotes part of the key; this server quotes all of it.
    llm_server.fail(MODEL, 401, body=f'{{"error": {{"message": "Incorrect API key provided: {KEY}"}}}}')

    error = failure(provider)

    assert isinstance(error, errors.AuthenticationFailed)
    env = "MISTRAL_API_KEY" if provider.name == "mistral" else "OPENAI_API_KEY"
    assert env in str(error)
    assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(provider)


def test_server_text_echoing_the_key_is_scrubbed(provider: Provider, llm_server: LLMServer) -> None:
    llm_server.fail(MODEL, 400, body=f'{{"error": {{"message": "bad header Bearer {KEY}"}}}}')
    error = failure(provider)
    assert "bad header Bearer [key]" in str(error) and KEY not in str(error)


@pytest.mark.parametrize(
    "broken",
    [
        lambda s: s.malformed(MODEL),
        lambda s: s.empty(MODEL),
        lambda s: s.fail(MODEL, 200, body="{}"),
        lambda s: s.fail(MODEL, 200, body="[]"),
        lambda s: s.fail(MODEL, 200, body=""),
        lambda s: s.fail(MODEL, 200, body='{"choices": [{"index": 0, "message": null}]}'),
    ],
    ids=["truncated", "empty-answer", "empty-object", "list", "no-body", "null-message"],
)
def test_a_200_without_a_readable_answer_is_transient(
    provider: Provider, llm_server: LLMServer, broken: object
) -> None:
    broken(llm_server)  # type: ignore[operator]
    error = failure(provider)
    assert isinstance(error, errors.MalformedResponse) and error.kind == "transient"
    assert llm_server.count() == 1


def test_missing_usage_counts_come_back_as_none(provider: Provider, llm_server: LLMServer) -> None:
    llm_server.blank_usage(MODEL)
    response = ask(provider)
    assert (response.tokens_in, response.tokens_out) == (None, None)


def test_openai_compatible_server_may_omit_usage(llm_server: LLMServer) -> None:
    llm_server.reset()
    llm_server.no_usage(MODEL)
    provider = OpenAIProvider("local", api_key=SecretStr(KEY), base_url=f"{llm_server.url}/v1")
    response = provider.chat(ChatRequest(model=MODEL, messages=HELLO), timeout_s=2)
    assert response.content and (response.tokens_in, response.tokens_out) == (None, None)


def test_slow_answer_times_out_within_the_attempt_timeout(provider: Provider, llm_server: LLMServer) -> None:
    llm_server.slow(MODEL, 3.0)
    started = time.monotonic()

    error = failure(provider, timeout_s=0.3)

    assert isinstance(error, errors.ProviderTimeout) and error.kind == "transient"
    assert 0.25 <= time.monotonic() - started < 1.0
    assert llm_server.count() == 1


@pytest.mark.parametrize("kind", [MistralProvider, OpenAIProvider])
def test_unreachable_server_is_transient(kind: type[MistralProvider | OpenAIProvider]) -> None:
    with LLMServer() as gone:
        url = gone.url
    provider = kind("p", api_key=SecretStr(KEY), base_url=url + ("/v1" if kind is OpenAIProvider else ""))
    with pytest.raises(errors.ProviderUnavailable):
        provider.chat(ChatRequest(model=MODEL, messages=HELLO), timeout_s=1)


def test_an_answer_carries_what_the_rate_limit_headers_say_is_left(provider: Provider, llm_server: LLMServer) -> None:
    # Given the server reports what is left of the key's limits on a 200
    llm_server.answer(MODEL, headers={
        "x-ratelimit-remaining-requests": "3", "x-ratelimit-remaining-tokens": "1200",
        "x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "20ms"})
    # When a call is answered, Then the response says so, each count with its own reset
    assert ask(provider).remaining == Remaining(requests=3, tokens=1200, requests_reset_s=360.0, tokens_reset_s=0.02)
    # And without those headers it says nothing
    llm_server.answer(MODEL)
    assert ask(provider).remaining is None


def test_the_soft_limit_landing_inside_the_sdk_call_stays_the_soft_limit(
    provider: Provider, llm_server: LLMServer
) -> None:
    # Given a call the server answers late, and the job's soft limit raised mid-call by a
    # signal handler (how Celery's prefork pool delivers it; the SDKs catch Exception there)
    llm_server.slow(MODEL, 3.0)

    def soft_limit(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded("soft time limit (0.5s) exceeded")

    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        # When the call is under way as the limit lands
        with pytest.raises(BaseException) as caught:
            ask(provider, timeout_s=10.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # Then the job sees its soft limit, not a provider failure (which would flag the model)
    assert isinstance(caught.value, SoftTimeLimitExceeded), repr(caught.value)
