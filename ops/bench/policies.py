"""Routing policies on one simulated workload: cost and tier share of `tokens` and `cascade`.

The same conversations (mixed lengths, `operators.samples.mixed`) go through a real
worker three times: every job on the large tier (critical, the baseline), the `tokens`
policy, and the `cascade` policy. The small model refuses a known fraction of answers;
the quality gate re-queues those to medium. The simulator decides per (model,
conversation), so the same conversations are poor under both policies.

    python -m ops.bench.policies [--jobs 300] [--poor-rate 0.2] [--concurrency 2]

Starts a private Redis unless REDIS_URL is set, and a worker it stops at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from rich.console import Console
from rich.table import Table

from contract.schemas import JobResult
from operators.samples import mixed
from operators.services import WorkerSpec, background_worker, redis_url
from producers.client import producer_app_for, send_job, to_job_result
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Script, publish_script

PREFIX = "bench-policies:"
RUNS: dict[str, dict[str, Any]] = {
    "all large": {"critical": True},
    "tokens": {"policy": "tokens"},
    "cascade": {"policy": "cascade"},
}


@dataclass(frozen=True)
class Run:
    name: str
    results: list[JobResult]
    seconds: float


def run(app: Celery, conversations: Sequence[list[dict[str, Any]]], name: str, options: dict[str, Any]) -> Run:
    """Send every conversation with `options` and wait for all results."""
    started = time.monotonic()
    ids = [send_job({"messages": c, **options}, app=app).id for c in conversations]
    results = [to_job_result(i, meta["status"], meta["result"])
               for i, meta in app.backend.get_many(ids, timeout=900, interval=0.05)]
    return Run(name, results, time.monotonic() - started)


def table(runs: list[Run], tiers: list[str], poor_rate: float) -> Table:
    baseline = next(r for r in runs if r.name == "all large")
    base_cost = sum(r.cost_usd for r in baseline.results)
    out = Table(title=f"routing policies: {len(baseline.results)} mixed conversations, "
                      f"small model refuses {poor_rate:.0%} of answers")
    for column in ("policy", "jobs", "ok", *[f"{t} share" for t in tiers], "escalations",
                   "jobs escalated", "cost", "vs all-large", "wall time"):
        out.add_column(column, justify="right")
    for one in runs:
        results = one.results
        share = Counter(r.tier for r in results if r.ok)
        cost = sum(r.cost_usd for r in results)
        out.add_row(
            one.name, str(len(results)), str(sum(r.ok for r in results)),
            *[f"{share[t] / len(results):.1%}" for t in tiers],
            str(sum(len(r.escalations) for r in results)),
            str(sum(1 for r in results if r.escalations)),
            f"${cost:.4f}", f"{cost / base_cost:.1%}" if base_cost else "-", f"{one.seconds:.1f} s",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--poor-rate", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    console = Console(width=160)
    catalog = load_catalog()
    small = catalog.tiers[0].models[0].name
    conversations = mixed(args.jobs, seed=args.seed)
    with redis_url() as (url, _private):
        app = producer_app_for(url, url)
        env = dict(os.environ, REDIS_URL=url, TIERLINE_KEY_PREFIX=PREFIX, TIERLINE_PROVIDER_MODE="simulated",
                   TIERLINE_CONCURRENCY=str(args.concurrency))
        log_path = Path(tempfile.gettempdir()) / "tierline-bench-policies.log"
        spec = WorkerSpec(args.concurrency, name="tierline-bench-policies@localhost")
        with background_worker(app, env, spec, log_path=log_path):
            script = Script(models={small: Behaviour(poor_rate=args.poor_rate, poor="refusal")})
            publish_script(app.backend.client, Keys(PREFIX).sim_script, script, ttl_s=3600)
            runs = [run(app, conversations, name, options) for name, options in RUNS.items()]
    console.print(table(runs, [t.name for t in catalog.tiers], args.poor_rate))


if __name__ == "__main__":
    main()
