"""The main job on the embedded default: a worker routes a sample of conversations.

Starts a private Redis (unless REDIS_URL is set) and a real worker, enqueues mixed
conversations with an outage of the small tier in the middle, shows a progress bar,
prints what happened, and stops everything it started.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import redis
from celery import Celery
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contract.schemas import JobResult
from operators.report import counted_jobs, report_from_redis, wait_for_jobs
from operators.report_html import render_html
from operators.report_view import render
from operators.samples import mixed
from operators.services import WorkerSpec, background_worker, redis_url
from producers.client import JobHandle, producer_app_for, send_job
from results import as_completed, store_for
from worker.catalog import Catalog, load_catalog
from worker.keys import SIM_SCRIPT_TTL_S, Keys
from worker.providers import provider_report
from worker.providers.simulated import Behaviour, Outage, Script, publish_script
from worker.settings import Settings

SMALL_TIER_SHARE_OF_OUTAGE = (0.3, 0.6)


def demo_script(catalog: Catalog, *, now: float, duration_s: float) -> Script:
    """Latencies per tier, a rate-limit outage of the small tier, a few poor small answers."""
    latency = {0: 60.0, 1: 150.0, 2: 350.0}
    models = {}
    start, end = (now + f * duration_s for f in SMALL_TIER_SHARE_OF_OUTAGE)
    for position, tier in enumerate(catalog.tiers):
        for model in tier.models:
            outages: tuple[Outage, ...] = ()
            if position == 0:
                outages = (Outage(start=start, end=end, error="rate_limited", retry_after_s=1.0),)
            models[model.name] = Behaviour(
                latency_ms=latency.get(position, 350.0), jitter_ms=40.0, outages=outages,
                poor_rate=0.04 if position == 0 else 0.0, poor="refusal",
            )
    return Script(models=models)


def run_demo(*, jobs: int, concurrency: int, seed: int, console: Console) -> int:
    """Run the demo; returns 0 when every job succeeded."""
    settings = Settings()
    catalog = load_catalog(settings.catalog_path)
    with redis_url() as (url, private):
        console.print(f"Redis: {'private server at ' + url if private else url}")
        app = producer_app_for(url, settings.result_url or url)  # results may be on a database
        # One-second metric buckets: the report's picture shows the outage in a short run.
        env = dict(os.environ, REDIS_URL=url, TIERLINE_SIM_REFRESH_S="0.2",
                   TIERLINE_CONCURRENCY=str(concurrency), TIERLINE_METRICS_BUCKET_S="1")
        log_path = Path(tempfile.gettempdir()) / "tierline-demo-worker.log"
        with background_worker(app, env, WorkerSpec(concurrency, name="tierline-demo@localhost"), log_path=log_path):
            report = provider_report(settings, catalog)
            mode = (f"providers {report.text}" if report.mode == "real"
                    else "the simulated provider" + report.text.removeprefix("simulated"))
            console.print(f"Worker up ({concurrency} processes), using {mode}; log: {log_path}")
            duration = max(4.0, jobs * 0.13 / concurrency)
            script = demo_script(catalog, now=time.time(), duration_s=duration)
            keys = Keys(settings.key_prefix)
            state = redis.Redis.from_url(settings.state_url or url)  # metrics live with the routing state
            publish_script(state, keys.sim_script, script, ttl_s=SIM_SCRIPT_TTL_S)
            began, counted = time.time(), counted_jobs(state, keys)
            results = _run(app, mixed(jobs, seed=seed), console)
            console.print(summary_table(results, catalog))
            wait_for_jobs(state, keys, counted + len(results))
            _show_report(state, keys, since_s=time.time() - began + 1, console=console)
    failures = sum(1 for r in results if not r.ok)
    return 0 if failures == 0 else 1


def _show_report(state: redis.Redis, keys: Keys, *, since_s: float, console: Console) -> None:
    """The run's report from the workers' metrics in Redis, as tables and as an HTML page."""
    report = report_from_redis(state, keys, since_s=since_s)
    console.print(render(report))
    page = Path(tempfile.gettempdir()) / "tierline-demo-report.html"
    page.write_text(render_html(report))
    console.print(f"The report as a page with charts: {page} (`tierline report --html FILE` writes one)")


def _run(app: Celery, conversations: list[list[dict[str, str]]], console: Console) -> list[JobResult]:
    handles = [send_job({"messages": c}, app=app) for c in conversations]
    results: list[JobResult] = []
    columns = (TextColumn("routing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("jobs", total=len(handles), status="")
        for result in _as_completed(app, handles):
            results.append(result)
            tiers = Counter(r.tier for r in results if r.ok)
            status = " ".join(f"{t}={n}" for t, n in sorted(tiers.items(), key=str))
            progress.update(bar, advance=1, status=status)
    return results


def _as_completed(app: Celery, handles: list[JobHandle]) -> Iterator[JobResult]:
    for job_id, stored in as_completed(store_for(app.backend), [h.id for h in handles], timeout_s=600):
        yield stored.job_result(job_id)


def summary_table(results: list[JobResult], catalog: Catalog) -> Table:
    """Jobs and share per tier, fallbacks, escalations, failures, latency, cost vs all-large."""
    large = catalog.tiers[-1].models[0]
    ok = [r for r in results if r.ok]
    table = Table(title=f"tierline demo: {len(results)} conversations")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for tier in catalog.tiers:
        count = sum(1 for r in ok if r.tier == tier.name)
        table.add_row(f"served by {tier.name}", f"{count} ({count / max(1, len(results)):.0%})")
    table.add_row("jobs that fell back (provider failure)", str(sum(1 for r in results if r.fallbacks)))
    table.add_row("failed provider attempts", str(sum(r.fallbacks for r in results)))
    table.add_row("escalations (quality gate)", str(sum(len(r.escalations) for r in results)))
    reasons = Counter(r.error.code for r in results if r.error)
    table.add_row("failures (expected 0)", str(len(results) - len(ok)) +
                  (f" {dict(reasons)}" if reasons else ""))
    latencies = sorted(r.latency_ms for r in results)
    if len(latencies) >= 2:
        p95 = statistics.quantiles(latencies, n=20)[-1]
        table.add_row("processing latency p50 / p95", f"{statistics.median(latencies):.0f} ms / {p95:.0f} ms")
    cost = sum(r.cost_usd for r in results)
    all_large = sum(large.cost_usd(*r.answer_tokens) for r in results)
    saving = f" ({1 - cost / all_large:.0%} saved)" if all_large else ""
    table.add_row("total cost", f"${cost:.4f}")
    table.add_row("same tokens, all on the large tier", f"${all_large:.4f}{saving}")
    return table
