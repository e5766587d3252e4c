"""Routing overhead per job: count tokens, plan, the routing-state read, the rate limit.

With live control on: the routing-state read (one script call) also brings the overlay
version, every circuit and the budgeted teams' spend; the plan is steered (weights,
circuits); the first candidate has a shared rate limit, so its admission is one more
script call. Two round trips in all, and the floor makes the same two raw ones: tiktoken's
raw encode of the same text, one raw MGET and one raw INCR on the same Redis through
redis-py. A matched floor does what the measured path does without its routing: the same
bounded token count (a conversation under the small tier's threshold is not encoded) and
the same two commands on the direct connection tierline's scripts use (a
`worker.redis_pool.Client`'s `direct`); what is left over it is the scripts' own work in
Redis and the routing itself. Each round is a new job's first delivery (its own id, its lease taken).
Targets:
p50 <= 0.3 ms at ~200 tokens, <= 1.2x the floor at every size.

    python -m ops.bench.routing_overhead [--rounds 3000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from worker import overlay as ov
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.metrics import Metrics
from worker.overlay_store import OverlayStore
from worker.plan import Route, plan
from worker.policies import POLICIES
from worker.redis_pool import Client
from worker.runtime import live_routing
from worker.settings import Settings
from worker.state import Lease, RoutingState
from worker.steering import steer
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
    client = Client.from_url(url)
    keys = Keys("bench:")
    catalog = load_catalog()
    counter = TokenCounter()
    counter.warm()
    encoder = counter.encoder
    settings = Settings(key_prefix="bench:", redis_url=url)
    OverlayStore(client, keys).change(
        lambda o: ov.set_budget(ov.set_limit(o, catalog.model_names[0], ov.RateLimit(rpm=10**9)),
                                "acme", ov.Budget(usd_per_day=10**6)), catalog, by="bench", what="bench")
    live = live_routing(client, settings, catalog)
    state = RoutingState(client, keys, Metrics(), along=live)
    busy_keys = [keys.busy(m) for m in catalog.model_names]
    direct = client.direct
    lease = Lease(owner="bench@host", ttl_s=60)
    bound = catalog.tiers[0].max_tokens
    jobs = itertools.count()
    policy = POLICIES["tokens"]
    table = Table(title=f"routing overhead per job ({rounds} rounds each, ms)")
    for column in ("size", "tokens", "tierline p50", "tierline p99", "floor p50", "floor p99", "p50 ratio",
                   "matched floor p50", "ratio to it"):
        table.add_column(column, justify="right")
    for label, words in SIZES.items():
        contents = [m["content"] for m in conversation(random.Random(1), words)]

        def route(contents: list[str] = contents) -> object:
            job_id = f"bench-job-{next(jobs)}"
            count = counter.conversation(contents, bound=bound)
            route = Route(tokens=count.tokens, output_tokens=1024, start_tier=policy.start_tier(count.tokens, catalog))
            snapshot = state.read(catalog.model_names, job_id=job_id, lease=lease)
            chosen = steer(plan(route, snapshot.busy, live.live.catalog), live.steering(), key=job_id)
            return live.admit(chosen.candidates[0].model.name, tokens=count.tokens + 1024)

        def floor(contents: list[str] = contents) -> object:
            for text in contents:
                encoder.encode_ordinary(text)
            client.mget(busy_keys)
            return client.incr("bench:floor")

        def matched_floor(contents: list[str] = contents) -> object:
            counter.conversation(contents, bound=bound)
            direct.call("MGET", *busy_keys)
            return direct.call("INCR", "bench:floor")

        ours, base, bare = [], [], []
        for _ in range(5):  # interleave so all see the same machine noise
            ours += _timed(route, rounds // 5)
            base += _timed(floor, rounds // 5)
            bare += _timed(matched_floor, rounds // 5)
        tokens = counter.conversation(contents).tokens
        table.add_row(label, f"{tokens:,}", f"{_p(ours, 50):.3f}", f"{_p(ours, 99):.3f}",
                      f"{_p(base, 50):.3f}", f"{_p(base, 99):.3f}", f"{_p(ours, 50) / _p(base, 50):.2f}x",
                      f"{_p(bare, 50):.3f}", f"{_p(ours, 50) / _p(bare, 50):.2f}x")
    client.delete("bench:floor", keys.overlay_version, keys.overlay_versions,
                  *(keys.rate_requests(m) for m in catalog.model_names))
    done = list(client.scan_iter("bench:*bench-job-*", count=1000))
    for start in range(0, len(done), 1000):
        client.delete(*done[start:start + 1000])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    url = redis_url_from_env()
    if url:
        Console(width=160).print(measure(url, args.rounds))
        return
    with PrivateRedis(appendonly=False) as server:
        Console(width=160).print(measure(server.url, args.rounds))


if __name__ == "__main__":
    main()
