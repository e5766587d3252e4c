"""Everything a worker process needs to route jobs, built once per process.

The vocabulary and the catalog load before fork (`prepare`); Redis clients and provider
clients are built lazily in each process (after fork), and rebuilt if the pid changes.
Nothing here assumes one job per process: a gevent pool shares one Runtime.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass

import redis

from contract.schemas import JobResult
from worker import carry_seal, deadline, keys, output_schemas
from worker.budget import SpendLedger
from worker.catalog import Catalog, load_catalog
from worker.deadline import PoolKind
from worker.errors import CatalogError
from worker.flushing import FlushTimer
from worker.health import HealthRecorder, health_config
from worker.inflight import Inflight
from worker.job_metrics import TeamLabels, record_result
from worker.live import LiveRouting
from worker.metrics import Metrics, Sink
from worker.overlay_store import LiveOverlay, OverlayStore
from worker.providers import build_providers, provider_report
from worker.providers.simulated import RedisScript
from worker.ratelimit import RateLimiter
from worker.recycle import Recycler
from worker.redis_pool import Direct, connect
from worker.router import Router, RouterConfig
from worker.settings import Settings, get_settings
from worker.state import RoutingState
from worker.tokens import TokenCounter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """Loaded once, before fork, shared by every child."""

    settings: Settings
    catalog: Catalog
    counter: TokenCounter
    concurrency: int
    pool: PoolKind = PoolKind.PREFORK


class Runtime:
    """The per-process routing machinery."""

    def __init__(self, shared: Shared) -> None:
        settings = shared.settings
        self.settings = settings
        self.catalog = shared.catalog
        self.counter = shared.counter
        self.metrics = Metrics(bucket_s=settings.metrics_bucket_s)
        # A gevent pool runs `concurrency` jobs in this one process: one connection each, the
        # background threads' few, and those the hot path's direct calls keep idle.
        self.redis: redis.Redis = connect(
            settings.state, settings,
            max_connections=max(settings.redis_max_connections, shared.concurrency + 4 + Direct.KEEP),
        )
        self.live = live_routing(self.redis, settings, self.catalog)
        self.sink = Sink(self.redis, settings.keys, settings.metrics_bucket_s, settings.metrics_retention_s,
                         keys.METRICS_TTL_S)
        self.teams = TeamLabels(settings.metrics_teams)
        self.state = RoutingState(self.redis, settings.keys, self.metrics, along=self.live)
        script = RedisScript(self.redis, settings.keys.sim_script, refresh_s=settings.sim_refresh_s)
        providers = build_providers(
            settings, self.catalog, self.counter, script.current, concurrency=shared.concurrency
        )
        self.router = Router(
            catalog=self.catalog,
            providers=providers,
            state=self.state,
            counter=self.counter,
            metrics=self.metrics,
            config=RouterConfig(
                attempt_budget=settings.attempt_budget,
                backoff_s=settings.backoff_s,
                max_escalations=settings.max_escalations,
                default_policy=settings.policy,
                rate_limit_wait=settings.rate_limit_wait,
                busy_ttl_s=settings.busy_ttl_s,
            ),
            live=self.live,
        )
        self.pool = shared.pool
        self.decision_hold = deadline.DecisionHold(shared.pool)
        self.inflight = Inflight(self.redis, settings.keys, self.router.attempts_so_far)
        # Celery recycles prefork processes itself; other pools run jobs in this process.
        self.recycler = None if shared.pool is PoolKind.PREFORK else Recycler(
            max_jobs=settings.max_tasks_per_child * shared.concurrency, max_memory_mb=settings.max_memory_mb
        )
        # Metrics, health windows and spend reach Redis within a second of a job, busy or not.
        self.flush_timer = FlushTimer(lambda: self.flush_metrics(force=True))

    def job_done(self) -> None:
        """A job ended in this process (counts towards recycling under gevent/threads)."""
        if self.recycler is not None:
            self.recycler.job_done()

    def soft_limit(self, started: float) -> ContextManager[None]:
        """tierline's own soft time limit for a job that began at `started` (monotonic),
        on the pools where Celery enforces none."""
        left = self.settings.soft_time_limit_s - (time.monotonic() - started)
        return deadline.soft_limit(self.pool, max(0.0, left))

    @property
    def hard_limit_errors(self) -> tuple[type[BaseException], ...]:
        """What the hard time limit raises inside a job on this pool."""
        return deadline.hard_limit_errors(self.pool)

    @functools.cached_property
    def carry_secret(self) -> bytes:
        """The key that seals re-queued jobs' carries: the setting, or the workers' shared one."""
        configured = self.settings.carry_secret.get_secret_value() if self.settings.carry_secret else ""
        if configured:  # an empty value (compose's default) means unset
            return configured.encode()
        return carry_seal.shared_secret(self.redis, self.settings.keys.carry_secret)

    def deadline(self, started: float | None = None) -> float:
        """Monotonic time by which a job must have finished its attempts.

        started: when the task began (``time.monotonic()``; default now): its soft time
        limit counts from then.
        """
        s = self.settings
        begun = time.monotonic() if started is None else started
        return begun + s.soft_time_limit_s - s.deadline_margin_s

    def flush_metrics(self, *, force: bool = False) -> None:
        """Send the counters to Redis if a flush is due; `force`: now (the process is ending)."""
        self.metrics.maybe_flush(self.sink, force=force)
        self.live.flush(force=force)

    def count_result(self, result: JobResult, payload: object) -> None:
        """Add a finished job to the metric series; `payload` is its raw job (for metadata.team)."""
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        team = self.teams.label(metadata.get("team")) if isinstance(metadata, dict) else None
        record_result(self.metrics, result, baseline=self.catalog.tiers[-1].models[0], team=team)


def live_routing(client: redis.Redis, settings: Settings, catalog: Catalog) -> LiveRouting:
    """Overlay, circuits, shared limits, health windows and spend for one process."""
    k = settings.keys
    return LiveRouting(
        keys=k, models=catalog.model_names,
        overlay=LiveOverlay(OverlayStore(client, k), catalog),
        health=HealthRecorder(client, k, health_config(settings)),
        limiter=RateLimiter(client, k, window_s=settings.rate_limit_window_s),
        ledger=SpendLedger(client, k),
    )


class _PerProcess:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: Shared | None = None
        self._runtime: tuple[int, Runtime] | None = None

    def prepare(self, concurrency: int | None = None, pool: str = "prefork") -> Shared:
        with self._lock:
            if self._shared is None:
                settings = get_settings()
                catalog = load_catalog(settings.catalog_path)
                counter = TokenCounter(settings.tokenizer)
                counter.warm()
                output_schemas.load(settings.schemas)
                self._shared = Shared(
                    settings, catalog, counter, concurrency or settings.concurrency, deadline.pool_kind(pool)
                )
            return self._shared

    def built(self) -> Runtime | None:
        """This process's Runtime if a job has built it, else None."""
        current = self._runtime
        return current[1] if current is not None and current[0] == os.getpid() else None

    def get(self) -> Runtime:
        current = self._runtime
        if current is not None and current[0] == os.getpid():
            return current[1]
        shared = self.prepare()
        with self._lock:
            if self._runtime is None or self._runtime[0] != os.getpid():
                self._runtime = (os.getpid(), Runtime(shared))
            return self._runtime[1]


_PROCESS = _PerProcess()


def prepare(*, concurrency: int | None = None, pool: str = "prefork") -> Shared:
    """Load settings, catalog, vocabulary and output schemas (before fork).

    concurrency: jobs at once in one pool process. pool: Celery's pool name (-P).

    Raises CatalogError on a bad catalog file, or when real providers are on and no model
    of the catalog has a key; SchemaRegistryError on a bad schema entry.
    """
    shared = _PROCESS.prepare(concurrency, pool)
    report = provider_report(shared.settings, shared.catalog)
    if not report.served:
        # Real providers on, and the catalog names only providers without a key.
        raise CatalogError(f"no model of the catalog can be called: providers {report.text}")
    return shared


def announce() -> None:
    """Log which providers serve which tiers (once the worker's logging is set up)."""
    shared = _PROCESS.prepare()
    report = provider_report(shared.settings, shared.catalog)
    log.log(
        logging.WARNING if report.left_out else logging.INFO,
        "tierline ready: providers %s; tiers=%s tokenizer=%s",
        report.text,
        ",".join(t.name for t in shared.catalog.tiers),
        shared.settings.tokenizer,
    )


def runtime() -> Runtime:
    """This process's Runtime, built on first use after fork."""
    return _PROCESS.get()


def built() -> Runtime | None:
    """This process's Runtime if a job has built it (no building here), else None."""
    return _PROCESS.built()


def shutdown() -> None:
    """Flush this process's pending counters before it exits (max tasks per child, stop)."""
    current = built()
    if current is not None:
        current.flush_timer.stop()
        current.flush_metrics(force=True)
