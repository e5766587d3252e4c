"""`tierline replay --through-workers`: a sample of the trace sent to real workers.

The sample is paced by its timestamps, `speedup` times faster than the trace, to a real
worker on the simulated provider, whose script follows the scenario: outages at the
same moments of the trace, latencies scaled by the speed-up, the same pass-rate curves
and seed (a job's verdicts are the calculator's), usage counted exactly. Each request
becomes a conversation of digits (one token each) whose routed count is the trace's
ContextTokens, with its answer length (GeneratedTokens) as its output budget.

It always starts a private Redis (other workers on a shared one could take its jobs).
The report puts the numbers from the JobResults beside the calculator's prediction for
the same requests and job ids (busy flags last `speedup` times longer in trace time).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery
from rich.console import Console

from contract.schemas import JobResult
from operators.embedded import PrivateRedis
from operators.replay.engine import Served
from operators.replay.run import replay_requests
from operators.replay.scenario import Scenario
from operators.replay.tally import Tally
from operators.replay.workload import Request, read
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for, send_job, to_job_result
from worker.catalog import Catalog
from worker.keys import SIM_SCRIPT_TTL_S, Keys
from worker.providers.simulated import Behaviour, Outage, Script, publish_script
from worker.settings import Settings

MIN_CONTENT_TOKENS = 5  # one message of one digit: 1 token + 4 per message
LEAD_S = 1.0
SHARE_BOUND_PTS = 1.0
COST_BOUND = 0.02


def sample_requests(path: Path, size: int) -> list[Request]:
    """Every k-th request of the trace (k spreads `size` over it), as it can be sent:
    at least one token of content, an output budget equal to the answer's length."""
    total = sum(1 for _ in read(path))
    stride = max(1, total // max(1, size))
    picked: list[Request] = []
    for index, request in enumerate(read(path)):
        if index % stride == 0 and len(picked) < size:
            out = max(4, request.tokens_out)
            picked.append(Request(request.at_s, max(MIN_CONTENT_TOKENS, request.tokens_in), out,
                                  request.category, out))
    return picked


def job_for(request: Request, job_id: str, policy: str) -> dict[str, Any]:
    """The job that replays `request`: digits whose routed count is its tokens_in."""
    content = ("0123456789" * (request.tokens_in // 10 + 1))[: request.tokens_in - 4]
    job: dict[str, Any] = {"job_id": job_id, "messages": [{"role": "user", "content": content}],
                           "max_output_tokens": request.max_output_tokens, "policy": policy}
    if request.category is not None:
        job["metadata"] = {"category": request.category}
    return job


def scenario_script(scenario: Scenario, catalog: Catalog, *, first_s: float, wall0: float, speedup: float) -> Script:
    """The simulated provider's script that follows `scenario` for a run paced at `speedup`
    whose first request is sent at `wall0` (Unix seconds)."""
    models = {}
    for position, tier in enumerate(catalog.tiers):
        for spec in tier.models:
            latency = scenario.latency_of(spec.name, tier.name, position)
            outages = tuple(
                Outage(start=wall0 + (start - first_s) / speedup, end=wall0 + (end - first_s) / speedup,
                       error=o.error, retry_after_s=o.retry_after_s)
                for o in scenario.outages if o.model == spec.name
                for start, end in [o.window(first_s)]
            )
            models[spec.name] = Behaviour(
                latency_ms=latency.p50_ms / speedup, outages=outages, poor="refusal",
                quality=scenario.quality_of(spec.name, tier.name, position),
            )
    return Script(models=models, seed=scenario.seed, usage="exact", answer_length="budget")


def run_through_workers(
    path: Path, scenario: Scenario, *, policy: str | None, sample: int, speedup: float, console: Console,
    concurrency: int = 2,
) -> list[tuple[str, dict[str, Any]]]:
    """Predict, then run, a sample of `path`; both summaries, named, plus the agreement."""
    catalog = scenario.build_catalog()
    policy_name = policy or scenario.policy
    requests = sample_requests(path, sample)
    run_id = f"replay-{uuid.uuid4().hex[:8]}"
    predicted = replay_requests(requests, scenario, catalog=catalog, policy=policy_name, run_id=run_id,
                                time_scale=speedup).summary()
    with tempfile.TemporaryDirectory(prefix="tierline-replay-") as tmp:
        ran = _run(requests, scenario, catalog, policy_name, run_id, speedup, concurrency, Path(tmp), console)
    # The calculator again, for the moments the jobs actually reached a worker: a worker
    # that falls behind the pace moves a job across an outage's edge; the routing did not change.
    seen = sorted((request._replace(at_s=requests[0].at_s + (start - ran.wall0) * speedup), f"{run_id}-{i}")
                  for i, (request, start) in enumerate(zip(requests, ran.started, strict=True)))
    as_seen = replay_requests([r for r, _ in seen], scenario, catalog=catalog, policy=policy_name,
                              time_scale=speedup, job_ids=[j for _, j in seen]).summary()
    measured = measured_summary(requests, ran.results, catalog, speedup)
    agreement = {**agreement_of(as_seen, measured), "paced": agreement_of(predicted, measured),
                 **_waits(ran)}
    measured["agreement"] = agreement
    _say(console, agreement, speedup)
    return [(f"predicted ({len(requests)} sampled)", predicted), ("predicted, as the workers got them", as_seen),
            ("through workers", measured)]


def _waits(ran: _Ran) -> dict[str, float]:
    waits = sorted(start - sent for start, sent in zip(ran.started, ran.sent, strict=True))
    return {"queue_wait_p50_ms": waits[len(waits) // 2] * 1000, "queue_wait_max_ms": waits[-1] * 1000}


def _say(console: Console, agreement: dict[str, Any], speedup: float) -> None:
    verdict = "within" if agreement["within_bounds"] else "[red]outside[/]"
    paced = agreement["paced"]
    console.print(
        f"through workers: tier share differs from the prediction by at most {agreement['tier_share_pts']:.2f} "
        f"points, cost by {agreement['cost_diff']:.2%}: {verdict} the bounds ({SHARE_BOUND_PTS:g} point, "
        f"{COST_BOUND:.0%}). Jobs waited {agreement['queue_wait_p50_ms']:.0f} ms for a worker (max "
        f"{agreement['queue_wait_max_ms']:.0f} ms, {speedup:g}x that in trace time); against the trace's own "
        f"times: {paced['tier_share_pts']:.2f} points, {paced['cost_diff']:.2%}.")


def _run(
    requests: Sequence[Request], scenario: Scenario, catalog: Catalog, policy: str, run_id: str,
    speedup: float, concurrency: int, tmp: Path, console: Console,
) -> _Ran:
    """Run the sample: its JobResults in order, when each was sent and reached a worker."""
    settings = Settings()
    catalog_path = tmp / "catalog.toml"
    catalog_path.write_text(catalog_toml(catalog), encoding="utf-8")
    # Always a private Redis: on a shared one, other workers could take these jobs.
    with PrivateRedis(appendonly=False) as server:
        url = server.url
        app = producer_app_for(url, url)
        env = dict(os.environ, REDIS_URL=url, TIERLINE_PROVIDER_MODE="simulated", TIERLINE_SIM_REFRESH_S="0.1",
                   TIERLINE_CATALOG_PATH=str(catalog_path), TIERLINE_CONCURRENCY=str(concurrency),
                   TIERLINE_ATTEMPT_BUDGET=str(scenario.attempt_budget),
                   TIERLINE_MAX_ESCALATIONS=str(scenario.max_escalations),
                   TIERLINE_BACKOFF_S=str(scenario.backoff_s / speedup))
        spec = WorkerSpec(concurrency, name=f"{run_id}@localhost")
        with background_worker(app, env, spec, log_path=tmp / "worker.log"):
            wall0 = time.time() + LEAD_S
            script = scenario_script(scenario, catalog, first_s=requests[0].at_s, wall0=wall0, speedup=speedup)
            publish_script(app.backend.client, Keys(settings.key_prefix).sim_script, script, ttl_s=SIM_SCRIPT_TTL_S)
            console.print(f"through workers: {len(requests)} requests at {speedup:g}x, "
                          f"about {(requests[-1].at_s - requests[0].at_s) / speedup:.0f} s")
            sent = dict(_paced(app, requests, run_id, policy, wall0, speedup))
            metas = _in_order(app, list(sent))
    results = [to_job_result(job_id, meta["status"], meta["result"]) for job_id, meta in metas]
    started = [_done_s(meta) - result.latency_ms / 1000 if meta.get("date_done") else sent[job_id]
               for (job_id, meta), result in zip(metas, results, strict=True)]
    return _Ran(results, [sent[job_id] for job_id, _ in metas], started, wall0)


@dataclass(frozen=True)
class _Ran:
    """A run through workers: results, and per job when it was sent and started (Unix s)."""

    results: list[JobResult]
    sent: list[float]
    started: list[float]
    wall0: float


def _done_s(meta: dict[str, Any]) -> float:
    done = meta["date_done"]
    moment = done if isinstance(done, datetime) else datetime.fromisoformat(str(done))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _paced(app: Celery, requests: Sequence[Request], run_id: str, policy: str, wall0: float,
           speedup: float) -> Iterator[tuple[str, float]]:
    first = requests[0].at_s
    for index, request in enumerate(requests):
        wait = wall0 + (request.at_s - first) / speedup - time.time()
        if wait > 0:
            time.sleep(wait)  # pacing the trace, not waiting for an event
        job_id = f"{run_id}-{index}"
        sent_at = time.time()
        send_job(job_for(request, job_id, policy), app=app)
        yield job_id, sent_at


def _in_order(app: Celery, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    found = dict(app.backend.get_many(ids, timeout=600, interval=0.05))
    return [(job_id, found[job_id]) for job_id in ids]


def measured_summary(requests: Sequence[Request], results: Sequence[JobResult], catalog: Catalog,
                     speedup: float) -> dict[str, Any]:
    """The JobResults counted as the calculator counts its own outcomes (latency in trace time)."""
    names = [t.name for t in catalog.tiers]
    large = catalog.tiers[-1].models[0]
    tally = Tally(names)
    for request, result in zip(requests, results, strict=True):
        answered = any(a.outcome == "ok" for a in result.attempts)
        tally.add(Served(
            at_s=request.at_s, category=request.category,
            start_tier=names.index(result.attempts[0].tier) if result.attempts else 0,
            tier=names.index(result.tier) if result.ok and result.tier in names else None,
            error=result.error.code if result.error else None, cost_usd=result.cost_usd,
            all_large_usd=large.cost_usd(*result.answer_tokens) if answered else 0.0,
            latency_ms=max(1.0, result.latency_ms * speedup), failed_calls=result.fallbacks,
            escalations=len(result.escalations), tokens_in=request.tokens_in, tokens_out=request.tokens_out,
        ))
    return tally.summary()


def agreement_of(predicted: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """How far the measurement is from the prediction: tier share (points) and cost (ratio)."""
    share = max(abs(predicted["tier_share"][t] - measured["tier_share"][t]) * 100 for t in predicted["tier_share"])
    cost = abs(measured["cost_usd"] - predicted["cost_usd"]) / predicted["cost_usd"] if predicted["cost_usd"] else 0.0
    return {"tier_share_pts": share, "cost_diff": cost,
            "within_bounds": share <= SHARE_BOUND_PTS and cost <= COST_BOUND}


def catalog_toml(catalog: Catalog) -> str:
    """`catalog` written back as catalog TOML (what the worker loads)."""
    lines: list[str] = []
    for name, provider in catalog.providers.items():
        lines.append(f"[providers.{_q(name)}]")
        lines += [f"{k} = {_v(v)}" for k, v in provider.model_dump(exclude_none=True).items()]
    for tier in catalog.tiers:
        lines += ["", "[[tiers]]", f"name = {_v(tier.name)}", f"timeout_s = {tier.timeout_s!r}"]
        if tier.max_tokens is not None:
            lines.append(f"max_tokens = {tier.max_tokens}")
        for model in tier.models:
            lines.append("[[tiers.models]]")
            lines += [f"{k} = {_v(v)}" for k, v in model.model_dump().items()]
    return "\n".join(lines) + "\n"


def _q(name: str) -> str:
    return f'"{name}"'


def _v(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
