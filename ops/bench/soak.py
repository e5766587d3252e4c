"""Memory soak: one long-lived gevent worker's RSS over tens of thousands of jobs.

One worker process, `--pool gevent -c 100`, no recycling; waves of jobs that take every
path a day of traffic takes (answers, fallbacks after provider errors, quality-gate
escalations, JSON answers checked against a schema, refused input), on the simulated
provider (`--provider simulated`) or through an SDK against a loopback server
(`--provider mistral` / `openai`). The worker's RSS is read after each wave: what bounds a
long-lived worker's memory is whether it levels off, and where.

    python -m ops.bench.soak [--waves 10] [--jobs 2000] [--provider simulated]
"""

from __future__ import annotations

import argparse
import random
import time
from contextlib import ExitStack

import redis
from rich.console import Console
from rich.table import Table

from contract.names import TASK_COMPLETE
from operators.embedded import PrivateRedis, redis_url_from_env
from operators.samples import conversation
from ops.bench.concurrency import PREFIX, bench_catalog, gevent_worker, rss_mb, run
from ops.bench.loopback_llm import LoopbackLLM
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Outage, Script, publish_script

CONCURRENCY = 100
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
MODELS = {"mistral": "mistral-small-latest", "openai": "gpt-4o-mini"}


def mixed_jobs(count: int, rng: random.Random, pin: str | None) -> list[dict[str, object]]:
    """Jobs of every kind; each has a new id, and a tenth carry input the worker refuses."""
    jobs: list[dict[str, object]] = []
    for n in range(count):
        job: dict[str, object] = {"messages": conversation(rng, rng.randint(20, 600)),
                                  "metadata": {"team": f"team-{n % 5}"}}
        kind = n % 10
        if kind == 1:
            job["quality"] = {"must_not_match": [r"\bloopback\b|\bsimulated\b"], "min_chars": 5}
        elif kind == 2:
            job["quality"] = {"json_schema": SCHEMA}
        elif kind == 3:
            job["messages"] = []  # refused: invalid_job
        elif kind == 4:
            job["min_tier"] = "medium"
        if pin and kind not in (3, 4):
            job["pin_model"] = pin
        jobs.append(job)
    return jobs


def soak(url: str, waves: int, jobs: int, provider: str) -> list[tuple[int, float, float]]:
    """(jobs done, worker RSS MB, jobs/s of the wave) after each wave."""
    rng = random.Random(3)
    rows: list[tuple[int, float, float]] = []
    with ExitStack() as stack:
        env: dict[str, str] = {}
        if provider != "simulated":
            server = stack.enter_context(LoopbackLLM(delay_s=0.02))
            env = {"TIERLINE_PROVIDER_MODE": "real", "MISTRAL_API_KEY": "sk-bench", "OPENAI_API_KEY": "sk-bench",
                   "TIERLINE_MISTRAL_BASE_URL": server.url, "TIERLINE_OPENAI_BASE_URL": f"{server.url}/v1",
                   "TIERLINE_CATALOG_PATH": str(bench_catalog())}
        app, pid = stack.enter_context(gevent_worker(url, CONCURRENCY, env))
        # 20 ms calls; on the simulated provider 3% fail (a fallback), 10% answer poorly (an
        # escalation) and the small tier has an outage now and then (busy flags).
        now = time.time()
        outages = tuple(Outage(start=now + s, end=now + s + 5) for s in range(30, 3600, 60))
        script = Script(default=Behaviour(latency_ms=20, jitter_ms=20, error_rate=0.03, poor_rate=0.1),
                        models={"mistral-small-latest": Behaviour(latency_ms=20, jitter_ms=20, error_rate=0.03,
                                                                  poor_rate=0.1, outages=outages)})
        publish_script(redis.Redis.from_url(url), Keys(PREFIX).sim_script, script, ttl_s=7200)
        pin = MODELS.get(provider)
        rows.append((0, rss_mb(pid), 0.0))
        for wave in range(1, waves + 1):
            done = run(app, pid, f"wave {wave}", TASK_COMPLETE, mixed_jobs(jobs, rng, pin), set(range(jobs)))
            rows.append((wave * jobs, done.rss_mb, done.jobs_per_s))
    return rows


def table(rows: list[tuple[int, float, float]], provider: str) -> Table:
    out = Table(title=f"memory soak: one gevent worker, -c {CONCURRENCY}, {provider} provider, no recycling")
    for column in ("jobs done", "worker RSS MB", "growth since first wave MB", "jobs/s (wave)"):
        out.add_column(column, justify="right")
    first = rows[1][1] if len(rows) > 1 else rows[0][1]
    for done, rss, rate in rows:
        out.add_row(f"{done:,}", f"{rss:.0f}", f"{rss - first:+.0f}" if done else "", f"{rate:.0f}" if done else "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--provider", choices=("simulated", "mistral", "openai"), default="simulated")
    args = parser.parse_args()
    console = Console(width=120)
    url = redis_url_from_env()
    with ExitStack() as stack:
        if not url:
            url = stack.enter_context(PrivateRedis(appendonly=False)).url
        console.print(table(soak(url, args.waves, args.jobs, args.provider), args.provider))


if __name__ == "__main__":
    main()
