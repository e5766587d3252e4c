"""A job waits out a Redis outage within its own time, instead of failing bare.

A step that needs Redis (the routing state, or the broker on the same server) and has no
answer without it, such as reading the workers' carry key or publishing a re-queued job,
is retried with a short backoff until the job's deadline. Celery's publish retry policy
(`task_publish_retry_policy`) counts retries rather than time and gives up after about a
second, and redis-py's retries are per command: neither knows when the job must end.
Past the deadline the step raises `RedisAway`, which the task turns into the job's failed
JobResult (``out_of_time``). The waits are `time.sleep`: cooperative under gevent, and a
prefork soft time limit lands in them like anywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import kombu.exceptions
import redis

from results.redis import gave_up_on
from worker.errors import RedisAway

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis refused or dropped the connection, or is loading its files (BusyLoadingError is a
# ConnectionError); kombu raises OperationalError when a publish gave up reconnecting.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)
FIRST_PAUSE_S = 0.1
LONGEST_PAUSE_S = 1.0


def within(deadline: float, what: str, step: Callable[[], T]) -> T:
    """`step`'s value, retried while Redis is unreachable until `deadline` (monotonic).

    what: the step, for the log and the error ("re-queuing the job").
    Raises RedisAway when Redis is still unreachable at the deadline (one try at least).
    The log and the error name what did not answer: Redis, or a RabbitMQ broker.
    """
    pause = FIRST_PAUSE_S
    waited_since: float | None = None
    while True:
        try:
            value = step()
        except UNREACHABLE as exc:
            now, away = time.monotonic(), who_is_away(exc)
            if now >= deadline:
                raise RedisAway(f"{away} was unreachable {what} until the job's time ran out "
                                f"({type(exc).__name__})") from exc
            if waited_since is None:
                waited_since = now
                log.warning("waiting for %s %s (%s): up to %.0f s", away, what, type(exc).__name__, deadline - now)
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, LONGEST_PAUSE_S)
            continue
        if waited_since is not None:
            log.warning("%s is back %s after %.1f s", away, what, time.monotonic() - waited_since)
        return value


def who_is_away(exc: BaseException) -> str:
    """What did not answer: "the broker" for a publish to RabbitMQ (kombu's error, not
    caused by a Redis error as on a Redis broker), else "Redis"."""
    if isinstance(exc, kombu.exceptions.OperationalError) and not isinstance(
            exc.__cause__ or exc.__context__, redis.RedisError):
        return "the broker"
    return "Redis"


def publish_within(deadline: float, what: str, backend: Any, send: Callable[[], T]) -> T:
    """`send`'s value, a publish retried while Redis is unreachable until `deadline` (`within`),
    each try checked first (`sending`). backend: the task's result backend."""
    return within(deadline, what, lambda: sending(backend, send))


def sending(backend: Any, send: Callable[[], T]) -> T:
    """One try of a publish that must wait for Redis (`publish_within` retries it): first
    the results' Redis must answer, since a publish would otherwise wait inside Celery, blind
    to the job's deadline (under gevent Celery first subscribes to the new task's result,
    retrying ~20 times a second apart, then gives up with a RuntimeError caused by the lost
    connection, raised here as that error). A broker that does not answer fails the publish
    itself, after Celery's short retry policy.

    backend: the task's result backend; only a Redis one is pinged.
    """
    results = getattr(backend, "client", None)
    if isinstance(results, redis.Redis):
        results.ping()
    try:
        return send()
    except RuntimeError as exc:
        lost = gave_up_on(exc)
        if lost is not None:
            raise lost from exc
        raise
