"""Helpers for the metrics tests: a scripted run, an exporter on a free port, a scrape."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from prometheus_client.parser import text_string_to_metric_families

from contract.schemas import JobResult
from operators.exporter import RedisCollector, serve
from producers.client import JobHandle, submit
from tests.support import RunningWorker
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Outage, Script

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"


def outage_and_refusals(now: float) -> Script:
    """Small down (transient), medium refusing every answer: fall back, then escalate."""
    return Script(models={
        SMALL: Behaviour(outages=(Outage(start=now - 1, end=now + 600),)),
        MEDIUM: Behaviour(poor_rate=1.0, poor="refusal"),
    })


def mixed_jobs(w: RunningWorker, n: int, tag: str) -> list[JobHandle]:
    """`n` small jobs, a critical one, one for team `ops`, one with an unknown pinned model."""
    handles = [submit([{"role": "user", "content": f"Where is parcel {tag}-{i}?"}], app=w.app) for i in range(n)]
    handles.append(submit([{"role": "user", "content": "Refund order 7?"}], app=w.app, critical=True))
    handles.append(submit([{"role": "user", "content": "Reset my password"}], app=w.app,
                          metadata={"team": "ops"}))
    handles.append(submit([{"role": "user", "content": "hi"}], app=w.app, pin_model="no-such-model"))
    return handles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def exporter(url: str, prefix: str) -> Iterator[str]:
    """An exporter on a free loopback port over the Redis at `url`; yields its /metrics URL."""
    client = redis.Redis.from_url(url)
    server, thread = serve(RedisCollector(client, client, Keys(prefix), load_catalog()),
                           port=0, address="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"  # type: ignore[attr-defined]
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
        client.close()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample at `url`: (sample name, sorted labels) → value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: Samples, name: str, **match: str) -> float:
    """The sum of `name`'s samples whose labels include `match`."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and all((k, val) in labels for k, val in match.items()))


def wait_flushed(url: str, name: str, expected: float, **match: str) -> Samples:
    """Scrape until `name` reaches `expected` (the workers flush every second)."""
    deadline = time.monotonic() + 15
    samples = scrape(url)
    while total(samples, name, **match) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(url)
    return samples


def sums(results: list[JobResult]) -> dict[str, float]:
    """What the metrics must add up to, from the JobResults."""
    return {
        "jobs": len(results),
        "failed": sum(1 for r in results if not r.ok),
        "attempts": sum(len(r.attempts) for r in results),
        "ok_attempts": sum(1 for r in results for a in r.attempts if a.outcome == "ok"),
        "fallbacks": sum(r.fallbacks for r in results),
        "escalations": sum(len(r.escalations) for r in results),
        "tokens_in": sum(r.tokens_in for r in results),
        "tokens_out": sum(r.tokens_out for r in results),
        "cost": sum(r.cost_usd for r in results),
    }
