"""One bounded Redis connection pool per process, with timeouts and health checks."""

from __future__ import annotations

import redis

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
