"""Jobs/s with hundreds in flight on one gevent worker: tierline against a plain task.

One worker process, `--pool gevent -c 300`, the same Redis; in one run:
- `plain`: a Celery task that sleeps 1 s (what the pool and Redis allow);
- `simulated`: tierline jobs on the simulated provider at 1 s latency;
- `mistral` / `openai`: tierline jobs through the real SDKs against a loopback asyncio
  server holding every connection open (keep-alive), answering after 1 s (a process of
  its own, whose CPU per call the table shows);
- `simulated + 2% huge`: the simulated run with 2% of jobs carrying ~200,000-token
  conversations (the p99 of the small jobs is compared with the run without them).
Targets: simulated ≥ 0.9 of plain; SDK paths ≥ 0.8 of simulated with the job's p50
≤ 1.5 s (its own latency, from the worker taking it to its result: the JobResult's
`latency_ms`; latency from send also counts the wait in the queue, 900 jobs sent at once
to 300 slots); small jobs' p99 with huge ones ≤ 1.2× without. The worker's CPU per job
(its process's user + system time over the run) is the measure least moved by a noisy
machine.

    python -m ops.bench.concurrency [--jobs 900] [--concurrency 300] [--paths plain,simulated,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery
from rich.console import Console
from rich.table import Table

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from operators.services import WorkerSpec, background_worker
from ops.bench.cpu import process_cpu_s
from ops.bench.loopback_llm import LoopbackLLM
from producers.client import producer_app_for
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Script, publish_script

SLEEP = "bench.sleep"  # ops/bench/noop_app.py
PREFIX = "bench:"
LATENCY_S = 1.0
SIMULATED = "tierline, simulated 1 s"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    name: str
    jobs_per_s: float
    p50_s: float
    p99_s: float
    small_p99_s: float
    rss_mb: float
    job_p50_s: float | None  # the JobResult's own latency (worker start to result); None for the plain task
    cpu_ms: float  # the worker process's CPU per job
    server_cpu_ms: float | None = None  # the loopback server's CPU per call (SDK runs)


@contextmanager
def gevent_worker(url: str, concurrency: int, env: dict[str, str]) -> Iterator[tuple[Celery, int]]:
    full = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX=PREFIX, TIERLINE_CONCURRENCY=str(concurrency),
                TIERLINE_SIM_REFRESH_S="5", **env)
    spec = WorkerSpec(concurrency, pool="gevent", name=f"bench-{uuid.uuid4().hex[:6]}@localhost",
                      queues=QUEUE_CONVERSATIONS, app_module="ops.bench.noop_app")
    app = producer_app_for(url, url)
    app.conf.task_routes = {SLEEP: {"queue": QUEUE_CONVERSATIONS}, TASK_COMPLETE: {"queue": QUEUE_CONVERSATIONS}}
    with background_worker(app, full, spec, cwd=ROOT, timeout_s=120) as process:
        yield app, process.pid


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def job_latency_s(value: bytes) -> float | None:
    """The JobResult's own latency from a stored Celery result, when it is one."""
    result = json.loads(value).get("result")
    return result["latency_ms"] / 1000 if isinstance(result, dict) and "latency_ms" in result else None


def run(app: Celery, pid: int, name: str, task: str, jobs: list[dict[str, object]], small: set[int]) -> Run:
    """Send every job, poll the results (one MGET per 20 ms), time each from send to result."""
    client: redis.Redis = app.backend.client
    sent: dict[str, float] = {}
    ids = []
    cpu_before = process_cpu_s(pid)
    start = time.perf_counter()
    for job in jobs:
        task_id = str(uuid.uuid4())
        kwargs = {"seconds": LATENCY_S} if task == SLEEP else {"job": job}
        app.send_task(task, kwargs=kwargs, task_id=task_id, argsrepr=f"job={task_id}", kwargsrepr="{}")
        sent[task_id] = time.perf_counter()
        ids.append(task_id)
    done: dict[str, float] = {}
    own: list[float] = []
    keys = [app.backend.get_key_for_task(i) for i in ids]
    while len(done) < len(ids):
        time.sleep(0.02)
        now = time.perf_counter()
        for task_id, value in zip(ids, client.mget(keys), strict=True):
            if value is not None and task_id not in done:
                done[task_id] = now
                if (latency := job_latency_s(value)) is not None:
                    own.append(latency)
    elapsed = time.perf_counter() - start
    cpu_ms = (process_cpu_s(pid) - cpu_before) * 1000 / len(ids)
    latencies = [done[i] - sent[i] for i in ids]
    small_latencies = [latencies[n] for n in small]
    client.delete(*keys)
    q = statistics.quantiles
    return Run(name, len(ids) / elapsed, statistics.median(latencies), q(latencies, n=100)[98],
               q(small_latencies, n=100)[98], rss_mb(pid), statistics.median(own) if own else None, cpu_ms)


def small_jobs(count: int) -> list[dict[str, object]]:
    rng = random.Random(5)
    return [{"messages": conversation(rng, rng.randint(20, 300))} for _ in range(count)]


def with_huge(jobs: list[dict[str, object]], share: float) -> tuple[list[dict[str, object]], set[int]]:
    """`jobs` with every 1/share-th one replaced by a ~200,000-token conversation."""
    rng = random.Random(9)
    step = round(1 / share)
    huge = {"messages": conversation(rng, 150_000), "max_output_tokens": 64}  # ~200K tokens: context_too_long
    mixed = [huge if n % step == step - 1 else job for n, job in enumerate(jobs)]
    return mixed, {n for n in range(len(jobs)) if n % step != step - 1}


def measure(url: str, jobs: int, concurrency: int, paths: list[str]) -> list[Run]:
    sample = small_jobs(jobs)
    everything = set(range(jobs))
    runs: list[Run] = []
    with gevent_worker(url, concurrency, {}) as (app, pid):
        client = redis.Redis.from_url(url)
        publish_script(client, Keys(PREFIX).sim_script, Script(default=Behaviour(latency_ms=LATENCY_S * 1000)),
                       ttl_s=3600)
        run(app, pid, "warm-up", TASK_COMPLETE, sample[:concurrency], set(range(concurrency)))
        run(app, pid, "warm-up", SLEEP, sample[:concurrency], set(range(concurrency)))
        if "plain" in paths:
            runs.append(run(app, pid, "plain task (sleep 1 s)", SLEEP, sample, everything))
        if "simulated" in paths:
            runs.append(run(app, pid, SIMULATED, TASK_COMPLETE, sample, everything))
        if "huge" in paths:
            mixed, small = with_huge(sample, 0.02)
            runs.append(run(app, pid, "tierline, simulated, 2% huge", TASK_COMPLETE, mixed, small))
    for provider in ("mistral", "openai"):
        if provider in paths:
            runs.append(sdk_run(url, jobs, concurrency, provider, sample))
    return runs


# The packaged catalog plus an OpenAI model in the small tier, for the OpenAI SDK's run.
OPENAI_MODEL = """
  [[tiers.models]]
  name = "gpt-4o-mini"
  provider = "openai"
  context_tokens = 128000
  usd_per_mtok_in = 0.15
  usd_per_mtok_out = 0.60
"""


def bench_catalog() -> Path:
    text = (ROOT / "worker" / "catalog.toml").read_text()
    head, sep, rest = text.partition('[[tiers]]\nname = "medium"')
    path = Path(tempfile.mkdtemp(prefix="tierline-bench-")) / "catalog.toml"
    path.write_text(head + OPENAI_MODEL.lstrip("\n") + "\n" + sep + rest)
    return path


def sdk_run(url: str, jobs: int, concurrency: int, provider: str, sample: list[dict[str, object]]) -> Run:
    with LoopbackLLM(delay_s=LATENCY_S) as server:
        env = {"TIERLINE_PROVIDER_MODE": "real", "MISTRAL_API_KEY": "sk-bench", "OPENAI_API_KEY": "sk-bench",
               "TIERLINE_MISTRAL_BASE_URL": server.url, "TIERLINE_OPENAI_BASE_URL": f"{server.url}/v1",
               "TIERLINE_CATALOG_PATH": str(bench_catalog())}
        model = {"mistral": "mistral-small-latest", "openai": "gpt-4o-mini"}[provider]
        pinned = [{**job, "pin_model": model} for job in sample]
        with gevent_worker(url, concurrency, env) as (app, pid):
            run(app, pid, "warm-up", TASK_COMPLETE, pinned[:concurrency], set(range(concurrency)))
            before = server.cpu_s()
            measured = run(app, pid, f"tierline, {provider} SDK 1 s", TASK_COMPLETE, pinned, set(range(jobs)))
            return dataclasses.replace(measured, server_cpu_ms=(server.cpu_s() - before) * 1000 / jobs)


def table(runs: list[Run], jobs: int, concurrency: int) -> Table:
    out = Table(title=f"gevent -c {concurrency}, {jobs} jobs a run, {LATENCY_S:g} s provider latency")
    for column in ("run", "jobs/s", "ratio", "vs simulated", "p50 s", "p99 s", "small jobs' p99 s",
                   "job's own p50 s", "worker CPU ms/job", "worker RSS MB", "server CPU ms/call"):
        out.add_column(column, justify="right")
    base = runs[0].jobs_per_s if runs else 1.0
    simulated = next((r.jobs_per_s for r in runs if r.name == SIMULATED), None)
    for r in runs:
        out.add_row(r.name, f"{r.jobs_per_s:.1f}", f"{r.jobs_per_s / base:.2f}",
                    f"{r.jobs_per_s / simulated:.2f}" if simulated else "", f"{r.p50_s:.2f}", f"{r.p99_s:.2f}",
                    f"{r.small_p99_s:.2f}", "" if r.job_p50_s is None else f"{r.job_p50_s:.2f}",
                    f"{r.cpu_ms:.2f}", f"{r.rss_mb:.0f}",
                    "" if r.server_cpu_ms is None else f"{r.server_cpu_ms:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=900)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--paths", default="plain,simulated,huge,mistral,openai")
    args = parser.parse_args()
    paths = args.paths.split(",")
    console = Console(width=180)
    url = redis_url_from_env()
    if url:
        console.print(table(measure(url, args.jobs, args.concurrency, paths), args.jobs, args.concurrency))
        return
    with PrivateRedis(appendonly=False) as server:
        console.print(table(measure(server.url, args.jobs, args.concurrency, paths), args.jobs, args.concurrency))


if __name__ == "__main__":
    main()
