"""End-to-end throughput through a real worker: tierline jobs vs a plain Celery no-op.

Same worker processes, same Redis, same message size, rounds interleaved in one run.
The simulated provider answers with zero latency, so this measures tierline's own
cost per job (validate, count, route, one routing-state round trip, gate, result).
Target (issue 8): the median of 5 rounds of tierline's rate >= 0.85 of the no-op rate.
Beside the rates, the CPU each job costs in the worker's processes and in Redis, per
round: on a shared machine the rates move by ±10 % between runs, the CPU far less.

    python -m ops.bench.throughput [--jobs 2000] [--rounds 5] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import Celery
from rich.console import Console
from rich.table import Table

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation, mixed
from operators.services import WorkerSpec, background_worker
from ops.bench.cpu import group_cpu_s, process_cpu_s, redis_cpu_s
from producers.client import producer_app_for

NOOP = "bench.noop"  # ops/bench/noop_app.py (imported only inside the worker)


@dataclass
class Side:
    """One task's rounds: jobs/s, and CPU ms per job in the worker and in Redis."""

    rates: list[float] = field(default_factory=list)
    worker_cpu_ms: list[float] = field(default_factory=list)
    main_cpu_ms: list[float] = field(default_factory=list)  # the worker's main process (Celery's consumer)
    redis_cpu_ms: list[float] = field(default_factory=list)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


@contextmanager
def bench_worker(url: str, concurrency: int) -> Iterator[tuple[Celery, int]]:
    """The worker app plus the no-op task (ops/bench/noop_app.py), on the conversations queue."""
    env = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX="bench:", TIERLINE_CONCURRENCY=str(concurrency))
    spec = WorkerSpec(concurrency, name=f"bench-{uuid.uuid4().hex[:6]}@localhost", queues=QUEUE_CONVERSATIONS,
                      app_module="ops.bench.noop_app")
    app = producer_app_for(url, url)
    app.conf.task_routes = {NOOP: {"queue": QUEUE_CONVERSATIONS}, TASK_COMPLETE: {"queue": QUEUE_CONVERSATIONS}}
    with background_worker(app, env, spec) as process:
        yield app, process.pid


def run_round(app: Celery, pgid: int, task: str, jobs: list[dict[str, object]], side: Side | None = None) -> None:
    """Send every job, wait for every result; jobs per second and CPU per job into `side`.

    The producer shares the 2 cores with the workers, so it waits cheaply: one LLEN
    every 10 ms until the queue is drained, then one pass over the results.
    """
    client = app.backend.client
    worker_before, main_before, redis_before = group_cpu_s(pgid), process_cpu_s(pgid), redis_cpu_s(client)
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
    worker_cpu, redis_cpu = group_cpu_s(pgid) - worker_before, redis_cpu_s(client) - redis_before
    main_cpu = process_cpu_s(pgid) - main_before
    client.delete(*[app.backend.get_key_for_task(task_id) for task_id in ids])
    if side is not None:
        side.rates.append(len(jobs) / elapsed)
        side.worker_cpu_ms.append(worker_cpu * 1000 / len(jobs))
        side.main_cpu_ms.append(main_cpu * 1000 / len(jobs))
        side.redis_cpu_ms.append(redis_cpu * 1000 / len(jobs))


def workload(kind: str, jobs: int) -> list[dict[str, object]]:
    """`short`: one-paragraph conversations (the small tier's traffic); `mixed`: the demo's mix."""
    if kind == "short":
        rng = random.Random(3)
        return [{"messages": conversation(rng, rng.randint(20, 300))} for _ in range(jobs)]
    return [{"messages": c} for c in mixed(jobs, seed=3)]


def measure(url: str, jobs: int, rounds: int, concurrency: int, kind: str) -> Table:
    sample = workload(kind, jobs)
    sides = {"no-op": Side(), "tierline": Side()}
    with bench_worker(url, concurrency) as (app, pgid):
        run_round(app, pgid, TASK_COMPLETE, sample[:100])  # warm up both paths
        run_round(app, pgid, NOOP, sample[:100])
        for _ in range(rounds):
            run_round(app, pgid, NOOP, sample, sides["no-op"])
            run_round(app, pgid, TASK_COMPLETE, sample, sides["tierline"])
    table = Table(title=f"end-to-end throughput, {kind} workload, {jobs} jobs x {rounds} rounds, "
                  f"{concurrency} worker processes")
    for column in ("task", "jobs/s (best)", "jobs/s (median)", "ratio to no-op (median)",
                   "worker CPU ms/job (median)", "of which main process", "Redis CPU ms/job (median)",
                   "worker + Redis ratio"):
        table.add_column(column, justify="right")
    base, noop = median(sides["no-op"].rates), sides["no-op"]
    noop_cpu = median(noop.worker_cpu_ms) + median(noop.redis_cpu_ms)
    for name, side in sides.items():
        cpu = median(side.worker_cpu_ms) + median(side.redis_cpu_ms)
        table.add_row(name, f"{max(side.rates):.0f}", f"{median(side.rates):.0f}",
                      f"{median(side.rates) / base:.2f}", f"{median(side.worker_cpu_ms):.3f}",
                      f"{median(side.main_cpu_ms):.3f}",
                      f"{median(side.redis_cpu_ms):.3f}", f"{noop_cpu / cpu:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workload", choices=("short", "mixed"), default="short")
    args = parser.parse_args()
    url = redis_url_from_env()
    console = Console(width=160)
    if url:
        console.print(measure(url, args.jobs, args.rounds, args.concurrency, args.workload))
        return
    with PrivateRedis(appendonly=False) as server:
        console.print(measure(server.url, args.jobs, args.rounds, args.concurrency, args.workload))


if __name__ == "__main__":
    main()
