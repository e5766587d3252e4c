"""One bounded Redis connection pool per process, with timeouts and health checks; and
the way the hot path calls its scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from worker.settings import Settings


def connect(url: str, settings: Settings, *, max_connections: int | None = None) -> redis.Redis:
    """A client on a new bounded, blocking pool for `url` (call after fork).

    max_connections: the bound (default: the settings'); a caller waits up to the
    socket timeout for a free connection past it.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections or settings.redis_max_connections,
        timeout=settings.redis_socket_timeout_s,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        health_check_interval=settings.redis_health_check_s,
        retry_on_timeout=False,
    )
    return redis.Redis(connection_pool=pool)


def run_script(client: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
    """`script` (registered on `client`) run with `keys` and `args`: one EVALSHA.

    The scripts run on every delivery and attempt, and redis-py's Script wrapper costs a
    fifth of such a call's CPU; it is used only to load a script the server lacks.
    """
    try:
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
    except redis.exceptions.NoScriptError:
        return script(keys=keys, args=args)
