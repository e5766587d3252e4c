"""A Redis-dependent step waits for Redis within the job's deadline (worker/redis_wait.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from operators.embedded import PrivateRedis
from worker.errors import RedisAway
from worker.redis_wait import within


def test_a_step_waits_for_redis_and_returns_once_it_is_back(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=True, folder=tmp_path).start()
    client = redis.Redis.from_url(server.url)
    client.set("carry", "key")
    server.redis_fsync()
    server.stop()
    back = threading.Timer(1.5, server.start)
    try:
        back.start()
        began = time.monotonic()
        value = within(time.monotonic() + 20, "to read the key", lambda: client.get("carry"))
        waited = time.monotonic() - began
    finally:
        back.join()
        client.close()
        server.stop()
    assert value == b"key"
    assert 1.5 <= waited < 10, waited


def test_a_step_still_without_redis_at_the_deadline_raises_redis_away(tmp_path: Path) -> None:
    server = PrivateRedis(appendonly=False, folder=tmp_path).start()
    client = redis.Redis.from_url(server.url)
    server.stop()
    began = time.monotonic()
    try:
        with pytest.raises(RedisAway, match="Redis was unreachable to read the key") as caught:
            within(time.monotonic() + 1, "to read the key", lambda: client.get("carry"))
    finally:
        client.close()
    assert 1 <= time.monotonic() - began < 5
    assert caught.value.code == "out_of_time"
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_an_error_other_than_an_unreachable_redis_is_not_waited_on(tmp_path: Path) -> None:
    with PrivateRedis(appendonly=False, folder=tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        client.set("text", "not a number")
        tries = []

        def count() -> object:
            tries.append(1)
            return client.incr("text")

        with pytest.raises(redis.ResponseError):
            within(time.monotonic() + 20, "to count", count)
        client.close()
    assert len(tries) == 1
