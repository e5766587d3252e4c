"""What tierline adds to one provider call, against calling the same SDK directly.

One run, one loopback chat-completions server (`tests.llm_server`), the official SDK
clients on both sides, calls interleaved so both see the same machine noise:

- sdk:      ``client.chat.completions.create`` / ``client.chat.complete``, SDK retries off
- provider: tierline's provider object (arguments, SDK call, answer read, errors mapped)
- router:   ``Router.route``: count tokens, read the busy flags (one Redis round trip on
            a real Redis), plan, the call, the quality gate, the JobResult

Target: provider − sdk under 1 ms at p50.

    python -m ops.bench.provider_overhead [--rounds 1000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import redis
from mistralai.client import Mistral
from openai import OpenAI
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from contract.schemas import Carry, parse_job
from operators.services import redis_url
from ops.bench.routing_overhead import _p, _timed
from tests.llm_server import LLMServer
from worker.catalog import parse_catalog
from worker.keys import Keys
from worker.metrics import Metrics
from worker.providers.base import ChatRequest, Provider
from worker.providers.mistral import NO_RETRY, MistralProvider
from worker.providers.openai import OpenAIProvider
from worker.record import JobRecord
from worker.redis_pool import Client
from worker.router import Router, RouterConfig
from worker.state import RoutingState
from worker.tokens import TokenCounter

KEY = "sk-bench-not-a-real-key"
MESSAGES = [
    {"role": "system", "content": "You are a careful assistant for a backend operations team."},
    {"role": "user", "content": "Summarise the refund policy for the support team in two sentences."},
]
MAX_TOKENS = 256
TIMEOUT_S = 10.0


def _catalog_text(model: str, provider: str) -> str:
    return (f'[[tiers]]\nname = "only"\ntimeout_s = {TIMEOUT_S}\n[[tiers.models]]\nname = "{model}"\n'
            f'provider = "{provider}"\ncontext_tokens = 32000\nusd_per_mtok_in = 0.2\nusd_per_mtok_out = 0.6\n')


def _direct(name: str, url: str) -> Callable[[], object]:
    """The SDK called the way its documentation shows, retries off, same timeout."""
    if name == "mistral":
        mistral = Mistral(api_key=KEY, server_url=url, retry_config=NO_RETRY)
        return lambda: mistral.chat.complete(
            model=name, messages=MESSAGES, max_tokens=MAX_TOKENS,  # type: ignore[arg-type]
            timeout_ms=int(TIMEOUT_S * 1000))
    client = OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
    return lambda: client.chat.completions.create(
        model=name, messages=MESSAGES, max_tokens=MAX_TOKENS,  # type: ignore[arg-type]
        timeout=TIMEOUT_S)


def _provider(name: str, url: str) -> Provider:
    if name == "mistral":
        return MistralProvider(name, api_key=SecretStr(KEY), base_url=url)
    return OpenAIProvider(name, api_key=SecretStr(KEY), base_url=f"{url}/v1")


def _routed(name: str, provider: Provider, client: redis.Redis, counter: TokenCounter) -> Callable[[], object]:
    catalog = parse_catalog(_catalog_text(name, name))
    metrics = Metrics(flush_every_s=3600)
    state = RoutingState(client, Keys("bench:"), metrics)
    router = Router(catalog=catalog, providers={name: provider}, state=state, counter=counter,
                    metrics=metrics, config=RouterConfig())
    job = parse_job({"messages": MESSAGES, "max_output_tokens": MAX_TOKENS})

    def route() -> Any:
        record = JobRecord("bench-job", Carry(started_at=time.time()), deadline=time.monotonic() + 60)
        snapshot = state.read(catalog.model_names, job_id="bench-job")
        return router.route(job, record, snapshot.busy)

    return route


def _paths(
    name: str, url: str, client: redis.Redis, counter: TokenCounter
) -> dict[str, Callable[[], object]]:
    """The three ways to make the same call, by path name."""
    provider = _provider(name, url)
    request = ChatRequest(model=name, messages=tuple(MESSAGES), max_output_tokens=MAX_TOKENS)
    return {
        "sdk": _direct(name, url),
        "provider": lambda: provider.chat(request, timeout_s=TIMEOUT_S),
        "router": _routed(name, provider, client, counter),
    }


def measure(redis_url: str, rounds: int) -> Table:
    client = Client.from_url(redis_url)  # a worker's client: its scripts go out on its direct connection
    counter = TokenCounter()
    counter.warm()
    table = Table(title=f"one provider call at a loopback server ({rounds} calls each, ms)")
    for column in ("provider", "path", "p50", "p99", "p50 − sdk", "p99 − sdk"):
        table.add_column(column, justify="right")
    with LLMServer() as server:
        for name in ("mistral", "openai"):
            paths = _paths(name, server.url, client, counter)
            samples: dict[str, list[float]] = {path: [] for path in paths}
            for fn in paths.values():
                _timed(fn, 50)  # warm: connection, pydantic schemas, tokenizer
            for _ in range(10):  # interleave so every path sees the same machine noise
                for path, fn in paths.items():
                    samples[path] += _timed(fn, rounds // 10)
            base50, base99 = _p(samples["sdk"], 50), _p(samples["sdk"], 99)
            for path, values in samples.items():
                p50, p99 = _p(values, 50), _p(values, 99)
                extra = ("", "") if path == "sdk" else (f"{p50 - base50:+.3f}", f"{p99 - base99:+.3f}")
                table.add_row(name, path, f"{p50:.3f}", f"{p99:.3f}", *extra)
    client.close()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    with redis_url() as (url, _):
        Console(width=120).print(measure(url, args.rounds))


if __name__ == "__main__":
    main()
