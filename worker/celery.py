"""The Celery app (`celery -A worker worker`): configuration and every signal, in one place.

JSON only, late acks, reject on worker lost, prefetch 1, soft and hard time limits,
a visibility timeout longer than the hard limit, results that expire, task events on.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from contract.names import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION, TASK_COMPLETE, TASK_EXTRACT
from worker import runtime
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
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "max_connections": connections,
            "socket_timeout": 30,
            "health_check_interval": settings.redis_health_check_s,
        },
        "redis_max_connections": connections,
        "redis_socket_timeout": 30,
        "redis_socket_connect_timeout": 5,
        "redis_retry_on_timeout": True,
        "broker_connection_retry_on_startup": True,
        "result_expires": settings.result_expires_s,
        # A result written while Redis restarts is retried (about 20 s in all), instead
        # of turning a finished job into a Celery FAILURE.
        "result_backend_always_retry": True,
        "result_backend_max_retries": 12,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 2000,
        "worker_max_tasks_per_child": settings.max_tasks_per_child,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": False,
        "task_default_queue": QUEUE_CONVERSATIONS,
        "task_routes": {
            TASK_COMPLETE: {"queue": QUEUE_CONVERSATIONS},
            TASK_EXTRACT: {"queue": QUEUE_EXTRACTION},
        },
        # A job running when the broker connection drops finishes and stores its result;
        # its unacked message comes back after the visibility timeout and the redelivery
        # returns the stored result (tasks/delivery.py). Cancelling it would store
        # REVOKED instead, and the producer would see that.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


# IntakeTask: a malformed message ends as a failed result instead of stopping the consumer.
app = Celery("tierline", include=["tasks.conversation", "tasks.extraction"], task_cls="worker.intake:IntakeTask")
app.conf.update(celery_config(get_settings()))


@signals.worker_init.connect
def _before_fork(sender: Any = None, **_: Any) -> None:
    # Size the broker's and the result backend's Redis pools for the pool's real
    # concurrency (`-c 200 -P gevent` needs no other setting), then load the vocabulary
    # (about 1 s) and validate the catalog once, before fork.
    concurrency = int(getattr(sender, "concurrency", 0) or get_settings().concurrency)
    connections = pool_size(concurrency)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "max_connections": connections}
    app.conf.redis_max_connections = connections
    runtime.prepare(concurrency=concurrency)


@signals.worker_process_shutdown.connect
def _process_ending(**_: Any) -> None:
    # A pool process recycled after max tasks per child (or stopped) would otherwise take
    # up to a second of counts with it.
    runtime.shutdown()


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
