"""Routing overhead per job: count tokens, plan, read busy flags (one Redis round trip).

Measured beside its floor in the same run: tiktoken's raw encode of the same text plus
one raw MGET on the same Redis. Targets: p50 <= 0.3 ms at ~200 tokens, <= 1.2x the floor
at every size.

    python -m ops.bench.routing_overhead [--rounds 3000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import redis
from rich.console import Console
from rich.table import Table

from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.metrics import Metrics
from worker.plan import Route, plan
from worker.policies import POLICIES
from worker.state import RoutingState
from worker.tokens import TokenCounter

SIZES = {"~200 tokens": 150, "~2,000 tokens": 1_900, "~12,000 tokens": 11_500}


def _timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1e6)
    return out


def _p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def measure(url: str, rounds: int) -> Table:
    client = redis.Redis.from_url(url)
    keys = Keys("bench:")
    catalog = load_catalog()
    counter = TokenCounter()
    counter.warm()
    encoder = counter.encoder
    state = RoutingState(client, keys, Metrics())
    busy_keys = [keys.busy(m) for m in catalog.model_names]
    policy = POLICIES["tokens"]
    table = Table(title=f"routing overhead per job ({rounds} rounds each, ms)")
    for column in ("size", "tokens", "tierline p50", "tierline p99", "floor p50", "floor p99", "p50 ratio"):
        table.add_column(column, justify="right")
    for label, words in SIZES.items():
        contents = [m["content"] for m in conversation(random.Random(1), words)]

        def route(contents: list[str] = contents) -> object:
            count = counter.conversation(contents, bound=catalog.tiers[0].max_tokens)
            route = Route(tokens=count.tokens, output_tokens=1024, start_tier=policy.start_tier(count.tokens, catalog))
            snapshot = state.read(catalog.model_names, job_id="bench-job")
            return plan(route, snapshot.busy, catalog)

        def floor(contents: list[str] = contents) -> object:
            for text in contents:
                encoder.encode_ordinary(text)
            return client.mget(busy_keys)

        ours, base = [], []
        for _ in range(5):  # interleave so both see the same machine noise
            ours += _timed(route, rounds // 5)
            base += _timed(floor, rounds // 5)
        tokens = counter.conversation(contents).tokens
        table.add_row(label, f"{tokens:,}", f"{_p(ours, 50):.3f}", f"{_p(ours, 99):.3f}",
                      f"{_p(base, 50):.3f}", f"{_p(base, 99):.3f}", f"{_p(ours, 50) / _p(base, 50):.2f}x")
    client.delete("bench:deliveries:bench-job:0")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    url = redis_url_from_env()
    if url:
        Console(width=120).print(measure(url, args.rounds))
        return
    with PrivateRedis(appendonly=False) as server:
        Console(width=120).print(measure(server.url, args.rounds))


if __name__ == "__main__":
    main()
