"""A Redis-dependent step waits for Redis within the job's deadline (worker/redis_wait.py)."""

from __future__ import annotations

import gc
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from operators.embedded import PrivateRedis
from producers.client import producer_app_for
from tests.relay import Relay
from tests.support import SHORT_RECONNECT
from worker.errors import RedisAway
from worker.redis_wait import publish_within, within

OUTAGE_S = 3.0


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


def test_a_publish_whose_result_subscription_gives_up_waits_for_redis_and_is_sent_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a publish (a re-queue, a document's merge) whose results' Redis answers the
    # ping, then goes away before Celery subscribes to the new task's result, for longer
    # than Celery's result consumer retries its reconnect (shortened here from ~20 s to a
    # few tries): Celery gives up with a RuntimeError, caused by the lost connection
    with PrivateRedis(appendonly=False, folder=tmp_path) as server, \
            Relay(("127.0.0.1", server.port), marker=b"never sent") as relay:
        app = producer_app_for(server.url, f"redis://127.0.0.1:{relay.port}/0")
        app.conf.result_backend_transport_options = SHORT_RECONNECT
        broker = redis.Redis.from_url(server.url)
        tries = []

        def send() -> object:
            tries.append(time.monotonic())
            if len(tries) == 1:  # Redis goes away between the ping and the publish
                relay.refuse_for(OUTAGE_S)
                relay.cut()
            return app.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id="subscribed-1")

        try:
            with caplog.at_level(logging.WARNING, logger="worker.redis_wait"):
                publish_within(time.monotonic() + 30, "to publish", app.backend, send)
            queued = broker.lrange(QUEUE_CONVERSATIONS, 0, -1)
        finally:
            # the sent task's AsyncResult unsubscribes when collected: while Redis is still here
            gc.collect()
            broker.close()
            app.close()
    # Then it waits for Redis as for any unreachable Redis (not a bare RuntimeError), and
    # once Redis is back the task is sent, once
    assert "waiting for Redis to publish (ConnectionError)" in caplog.text, caplog.text
    assert len(tries) == 2, tries  # the ping keeps every try made while Redis is away from the publish
    assert OUTAGE_S <= tries[1] - tries[0] < 20, tries
    assert [json.loads(m)["headers"]["id"] for m in queued] == ["subscribed-1"]


@pytest.mark.parametrize(("scheme", "named"), [("amqp", "the broker"), ("redis", "Redis")])
def test_a_publish_whose_broker_does_not_answer_names_it_in_the_reason(
    tmp_path: Path, scheme: str, named: str
) -> None:
    # Given a publish whose broker, RabbitMQ or Redis, refuses connections (results on Redis, up)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed = probe.getsockname()[1]
    with PrivateRedis(appendonly=False, folder=tmp_path) as server:
        broker = f"amqp://guest:guest@127.0.0.1:{closed}//" if scheme == "amqp" else f"redis://127.0.0.1:{closed}/0"
        app = producer_app_for(broker, server.url)
        try:
            # Then the job's reason names what did not answer
            with pytest.raises(RedisAway, match=f"^{named} was unreachable to publish until") as caught:
                publish_within(time.monotonic() + 1, "to publish", app.backend,
                               lambda: app.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id=f"{scheme}-1"))
        finally:
            app.close()
    assert caught.value.code == "out_of_time"
