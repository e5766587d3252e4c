"""The Celery app (`celery -A worker worker`): configuration and every signal, in one place.

JSON only, late acks, reject on worker lost, prefetch 1, soft and hard time limits,
a visibility timeout longer than the hard limit, results that expire, task events on.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
from typing import Any

from celery import Celery, bootsteps, signals

from contract.names import QUEUE_CONVERSATIONS, TASK_QUEUES
from results import store_for
from worker import broker, runtime, tracing
from worker.errors import CatalogError, SchemaRegistryError
from worker.retention import ResultJanitor, janitor_for
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)


def pool_size(concurrency: int) -> int:
    """Redis connections a worker needs: a gevent pool runs `concurrency` jobs at once."""
    return max(10, 2 * concurrency + 10)


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for a worker from tierline's settings."""
    connections = pool_size(settings.concurrency)
    return {
        "broker_url": settings.broker,
        "result_backend": settings.results,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.soft_time_limit_s,
        "task_time_limit": settings.hard_time_limit_s,
        "broker_transport_options": broker.transport_options(settings, max_connections=connections),
        "redis_max_connections": connections,
        "redis_socket_timeout": 30,
        "redis_socket_connect_timeout": 5,
        "redis_retry_on_timeout": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "result_expires": settings.result_expires_s,
        **result_retries(settings.result_outage_s),
        "worker_max_tasks_per_child": settings.max_tasks_per_child,
        "worker_max_memory_per_child": settings.max_memory_mb * 1024 if settings.max_memory_mb else None,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": False,
        "task_default_queue": QUEUE_CONVERSATIONS,
        **broker.queue_options(settings.broker),
        "task_routes": {task: {"queue": queue} for task, queue in TASK_QUEUES.items()},
        # A job running when the broker connection drops finishes and stores its result;
        # its unacked message comes back after the visibility timeout and the redelivery
        # returns the stored result (tasks/delivery.py). Cancelling it would store
        # REVOKED instead, and the producer would see that.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


RESULT_RETRY_BASE_MS = 100
RESULT_RETRY_MAX_MS = 2000


def result_retries(outage_s: float) -> dict[str, Any]:
    """Celery's retries of a result write, enough to outlast a Redis outage of `outage_s`.

    The sleeps grow from 0.1 s to 2 s (about 5 s for the first six), then stay at 2 s.
    """
    retries = 6 + math.ceil(outage_s / (RESULT_RETRY_MAX_MS / 1000))
    return {
        "result_backend_always_retry": True,
        "result_backend_max_retries": retries,
        "result_backend_base_sleep_between_retries_ms": RESULT_RETRY_BASE_MS,
        "result_backend_max_sleep_between_retries_ms": RESULT_RETRY_MAX_MS,
    }


broker.use_our_redis_transports()  # before any connection: worker/broker.py says why
# IntakeTask: a malformed message ends as a failed result instead of stopping the consumer.
app = Celery(
    "tierline", include=["tasks.conversation", "tasks.extraction", "tasks.chunks", "tasks.shadow"],
    task_cls="worker.intake:IntakeTask",
)
app.conf.update(celery_config(get_settings()))


@signals.worker_init.connect
def _before_fork(sender: Any = None, **_: Any) -> None:
    # Size the broker's and the result backend's Redis pools for the pool's real
    # concurrency (`-c 200 -P gevent` needs no other setting), then load the vocabulary
    # (about 1 s) and validate the catalog once, before fork.
    concurrency = int(getattr(sender, "concurrency", 0) or get_settings().concurrency)
    connections = pool_size(concurrency)
    if not broker.is_amqp(get_settings().broker):
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "max_connections": connections}
    app.conf.redis_max_connections = connections
    pool = pool_name(getattr(sender, "pool_cls", None))
    try:
        runtime.prepare(concurrency=concurrency, pool=pool)
    except (CatalogError, SchemaRegistryError) as exc:
        # Celery logs and ignores an exception raised in a signal handler, and the worker
        # would consume and fail every job: stop it here, before it consumes anything.
        refuse_to_start(str(exc))
    # Everything loaded so far (Celery, the SDKs, the vocabulary, the catalog) lives as long
    # as the process: keep it out of the garbage collector's passes, which otherwise walk it
    # again and again (and under prefork write to every object's header, copying the pages
    # the children share with this process).
    gc.collect()
    gc.freeze()
    if pool != "prefork":  # jobs run in this process (gevent, threads, solo): no fork to wait for
        tracing.configure_from_env()


def refuse_to_start(problem: str) -> None:
    """Stop the worker process with `problem` on stderr and exit status 2."""
    sys.stderr.write(f"tierline: the worker cannot start: {problem}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def pool_name(pool_cls: object) -> str:
    """The pool's short name (prefork, gevent, threads, solo, ...) from Celery's -P value."""
    if isinstance(pool_cls, str):
        return pool_cls.rpartition(":")[0].rpartition(".")[2] or pool_cls
    module = getattr(pool_cls, "__module__", "") or "prefork"
    return module.rpartition(".")[2]


@signals.worker_process_init.connect
def _process_started(**_: Any) -> None:
    # After fork: an exporter's thread does not survive it (off unless OTEL_* asks).
    tracing.configure_from_env()


@signals.task_prerun.connect
def _task_starting(**_: Any) -> None:
    # A new task: the soft limit raises again (worker/deadline.py: DecisionHold).
    current = runtime.built()
    if current is not None:
        current.decision_hold.release()


@signals.worker_process_shutdown.connect
def _process_ending(**_: Any) -> None:
    # A pool process recycled after max tasks per child (or stopped) would otherwise take
    # up to a second of counts with it, and its buffered spans.
    runtime.shutdown()
    tracing.shutdown()


@signals.worker_shutdown.connect
def _worker_ending(**_: Any) -> None:
    # The same for a pool that runs jobs in the worker's own process (gevent, threads).
    runtime.shutdown()
    tracing.shutdown()


# Loggers kept at WARNING in a worker: the SDKs' HTTP client logs every request without
# its job (the router logs each attempt with job, model and outcome), and Celery logs
# every return value, where an answer may carry user data (the task logs its own summary
# line: job, status, model, tier, tokens, cost).
QUIET_LOGGERS = ("httpx2", "celery.app.trace")


@signals.after_setup_logger.connect
def _quiet_loggers(**_: Any) -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    # worker_init runs before logging is set up: say which providers are in use here.
    runtime.announce()


class ResultCleanup(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """The main process's result janitor, on a backend that does not expire results itself."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.janitor: ResultJanitor | None = None

    def start(self, parent: Any) -> None:
        self.janitor = janitor_for(store_for(app.backend), period_s=get_settings().result_cleanup_s)
        if self.janitor is not None:
            self.janitor.start()

    def stop(self, parent: Any) -> None:
        if self.janitor is not None:
            self.janitor.stop()


app.steps["worker"].add(ResultCleanup)
