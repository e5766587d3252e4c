"""The transport under the SDK clients spreads calls in flight over its connection pools,
and gives each pool back its count whatever the call's end (answer, error status, timeout)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest
from pydantic import SecretStr

from tests.llm_server import CHAT_PATH, LLMServer
from worker.providers.base import ChatRequest
from worker.providers.mistral import MistralProvider
from worker.providers.openai import OpenAIProvider
from worker.providers.transport import SpreadTransport, pools_for

MODEL = "spread-model"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Spread me."}]}


@pytest.fixture
def transport() -> Iterator[SpreadTransport]:
    spread = SpreadTransport(3)
    yield spread
    spread.close()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_pools_follow_the_calls_in_flight() -> None:
    assert [pools_for(c) for c in (1, 2, 4, 5, 300, 10_000)] == [1, 1, 1, 2, 75, 128]


def test_calls_in_flight_go_to_the_least_busy_pool(transport: SpreadTransport, llm_server: LLMServer) -> None:
    llm_server.reset()
    llm_server.slow(MODEL, 0.5)
    with httpx2.Client(transport=transport, base_url=llm_server.url) as client:
        # Given three calls in flight at once
        threads = [threading.Thread(target=client.post, args=(CHAT_PATH,), kwargs={"json": BODY})
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        _until(lambda: llm_server.count(MODEL) == 3, "the three calls did not reach the server")
        # Then each is on a pool of its own, and every pool is free again once they are answered
        assert transport.open_requests == (1, 1, 1)
        for thread in threads:
            thread.join()
        assert transport.open_requests == (0, 0, 0)
    assert len({seen.peer_port for seen in llm_server.requests(MODEL)}) == 3


def test_a_pool_is_free_again_after_an_error_status_or_a_timeout(
    transport: SpreadTransport, llm_server: LLMServer
) -> None:
    llm_server.reset()
    with httpx2.Client(transport=transport, base_url=llm_server.url) as client:
        llm_server.fail(MODEL, 503)
        assert client.post(CHAT_PATH, json=BODY).status_code == 503
        llm_server.slow(MODEL, 2.0)
        with pytest.raises(httpx2.ReadTimeout):
            client.post(CHAT_PATH, json=BODY, timeout=0.2)
        assert transport.open_requests == (0, 0, 0)


@pytest.mark.parametrize("kind", [MistralProvider, OpenAIProvider])
def test_a_provider_with_several_pools_reuses_its_connections(
    kind: type[MistralProvider | OpenAIProvider], llm_server: LLMServer
) -> None:
    llm_server.reset()
    url = llm_server.url + ("/v1" if kind is OpenAIProvider else "")
    provider = kind("p", api_key=SecretStr("sk-spread"), base_url=url, pools=4)
    try:
        for _ in range(6):
            provider.chat(ChatRequest(model=MODEL, messages=({"role": "user", "content": "Hi."},)), timeout_s=2)
    finally:
        provider.close()
    # One call at a time: the least busy pool is always the first, and its connection is kept
    assert len({seen.peer_port for seen in llm_server.requests(MODEL)}) == 1
