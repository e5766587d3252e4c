"""End-to-end throughput through a real worker: tierline jobs vs a plain Celery no-op.

Same worker processes, same Redis, same message size, rounds interleaved in one run.
The simulated provider answers with zero latency, so this measures tierline's own
cost per job (validate, count, route, one routing-state round trip, gate, result).
Target: tierline's rate >= 0.8 of the no-op rate.

    python -m ops.bench.throughput [--jobs 2000] [--rounds 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from rich.console import Console
from rich.table import Table

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation, mixed
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for

NOOP = "bench.noop"  # ops/bench/noop_app.py (imported only inside the worker)


@contextmanager
def bench_worker(url: str, concurrency: int) -> Iterator[Celery]:
    """The worker app plus the no-op task (ops/bench/noop_app.py), on the conversations queue."""
    env = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX="bench:", TIERLINE_CONCURRENCY=str(concurrency))
    spec = WorkerSpec(concurrency, name=f"bench-{uuid.uuid4().hex[:6]}@localhost", queues=QUEUE_CONVERSATIONS,
                      app_module="ops.bench.noop_app")
    app = producer_app_for(url, url)
    app.conf.task_routes = {NOOP: {"queue": QUEUE_CONVERSATIONS}, TASK_COMPLETE: {"queue": QUEUE_CONVERSATIONS}}
    with background_worker(app, env, spec):
        yield app


def run_round(app: Celery, task: str, jobs: list[dict[str, object]]) -> float:
    """Send every job, wait for every result; jobs per second.

    The producer shares the 2 cores with the workers, so it waits cheaply: one LLEN
    every 10 ms until the queue is drained, then one pass over the results.
    """
    client = app.backend.client
    start = time.perf_counter()
    ids = []
    for job in jobs:
        task_id = str(uuid.uuid4())
        app.send_task(task, kwargs={"job": job}, task_id=task_id, argsrepr=f"job={task_id}", kwargsrepr="{}")
        ids.append(task_id)
    while client.llen(QUEUE_CONVERSATIONS):
        time.sleep(0.01)
    for _ in app.backend.get_many(ids, timeout=600, interval=0.005):
        pass
    elapsed = time.perf_counter() - start
    client.delete(*[app.backend.get_key_for_task(task_id) for task_id in ids])
    return len(jobs) / elapsed


def workload(kind: str, jobs: int) -> list[dict[str, object]]:
    """`short`: one-paragraph conversations (the small tier's traffic); `mixed`: the demo's mix."""
    if kind == "short":
        rng = random.Random(3)
        return [{"messages": conversation(rng, rng.randint(20, 300))} for _ in range(jobs)]
    return [{"messages": c} for c in mixed(jobs, seed=3)]


def measure(url: str, jobs: int, rounds: int, concurrency: int, kind: str) -> Table:
    sample = workload(kind, jobs)
    rates: dict[str, list[float]] = {"no-op": [], "tierline": []}
    with bench_worker(url, concurrency) as app:
        run_round(app, TASK_COMPLETE, sample[:100])  # warm up both paths
        run_round(app, NOOP, sample[:100])
        for _ in range(rounds):
            rates["no-op"].append(run_round(app, NOOP, sample))
            rates["tierline"].append(run_round(app, TASK_COMPLETE, sample))
    table = Table(title=f"end-to-end throughput, {kind} workload, {jobs} jobs x {rounds} rounds, "
                  f"{concurrency} worker processes")
    for column in ("task", "jobs/s (best)", "jobs/s (median)", "ratio to no-op (median)"):
        table.add_column(column, justify="right")
    base = sorted(rates["no-op"])[len(rates["no-op"]) // 2]
    for name, values in rates.items():
        median = sorted(values)[len(values) // 2]
        table.add_row(name, f"{max(values):.0f}", f"{median:.0f}", f"{median / base:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workload", choices=("short", "mixed"), default="short")
    args = parser.parse_args()
    url = redis_url_from_env()
    console = Console(width=120)
    if url:
        console.print(measure(url, args.jobs, args.rounds, args.concurrency, args.workload))
        return
    with PrivateRedis(appendonly=False) as server:
        console.print(measure(server.url, args.jobs, args.rounds, args.concurrency, args.workload))


if __name__ == "__main__":
    main()
