"""Busy flags and delivery counters on a real Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from operators.embedded import PrivateRedis
from tests.support import db_url
from worker.keys import Keys
from worker.metrics import Metrics
from worker.redis_pool import Client
from worker.state import Lease, RoutingState

MODELS = ("mistral-small-latest", "mistral-medium-latest", "mistral-large-latest")


class CountingConnection(redis.Connection):
    """A redis-py connection class that counts the packets it sends (round trips)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def client(module_db_url: str) -> Iterator[redis.Redis]:
    pool = redis.ConnectionPool.from_url(module_db_url, connection_class=CountingConnection)
    client = Client(connection_pool=pool)  # a worker's client: the read goes out on its direct path
    yield client
    client.delete(*[Keys("state-test:").busy(m) for m in MODELS])
    client.close()


@pytest.fixture
def state(client: redis.Redis) -> RoutingState:
    return RoutingState(client, Keys("state-test:"), Metrics())


def test_failure_sets_a_flag_with_its_ttl(state: RoutingState, client: redis.Redis) -> None:
    state.mark_busy(MODELS[0], ttl_s=60, reason="transient:unavailable")
    assert 59_000 < client.pttl(Keys("state-test:").busy(MODELS[0])) <= 60_000
    assert state.busy(MODELS) == {MODELS[0]}


def test_repeat_failure_extends_a_flag_and_never_shortens_it(state: RoutingState, client: redis.Redis) -> None:
    key = Keys("state-test:").busy(MODELS[1])
    state.mark_busy(MODELS[1], ttl_s=30, reason="transient:rate_limited")
    state.mark_busy(MODELS[1], ttl_s=5, reason="transient:unavailable")
    assert client.pttl(key) > 25_000
    assert client.get(key) == b"transient:rate_limited"
    state.mark_busy(MODELS[1], ttl_s=90, reason="configuration:authentication_failed")
    assert client.pttl(key) > 85_000


def test_flags_and_delivery_count_come_back_in_one_round_trip(state: RoutingState) -> None:
    state.mark_busy(MODELS[2], ttl_s=10, reason="transient:timeout")
    state.read(MODELS, job_id="warm-up")  # warm the connection and load the script
    before = CountingConnection.sent
    snapshot = state.read(MODELS, job_id="job-1", level=0)
    assert CountingConnection.sent - before == 1
    assert snapshot.busy == {MODELS[2]}
    assert snapshot.healthy


def test_delivery_counter_counts_each_delivery_of_a_level(state: RoutingState) -> None:
    first = state.read(MODELS, job_id="job-2", level=0).delivery
    second = state.read(MODELS, job_id="job-2", level=0).delivery
    other_level = state.read(MODELS, job_id="job-2", level=1).delivery
    assert (second - first, other_level) == (1, 1)


def test_a_first_delivery_takes_the_jobs_lease_in_the_same_round_trip(
    state: RoutingState, client: redis.Redis
) -> None:
    lease, key = Lease("host:1", 15), Keys("state-test:").lease("job-lease", 0)
    state.read(MODELS, job_id="warm-up-lease")
    # When a first delivery's read asks for the lease
    before = CountingConnection.sent
    first = state.read(MODELS, job_id="job-lease", level=0, lease=lease)
    # Then it holds it, with its TTL, and the read stayed one round trip
    assert CountingConnection.sent - before == 1
    assert first.leased and client.get(key) == b"host:1" and 14_000 < client.pttl(key) <= 15_000
    # And a later delivery (the job may still run elsewhere) takes nothing: it checks first
    client.set(key, "other:2", ex=15)
    again = state.read(MODELS, job_id="job-lease", level=0, lease=lease)
    assert (again.delivery, again.leased, client.get(key)) == (2, False, b"other:2")
    # And a read without `lease` never takes one
    assert not state.read(MODELS, job_id="job-no-lease", level=0).leased
    assert not client.exists(Keys("state-test:").lease("job-no-lease", 0))


def test_a_read_after_the_server_forgot_its_scripts_loads_the_script_again(
    state: RoutingState, client: redis.Redis
) -> None:
    state.mark_busy(MODELS[0], ttl_s=10, reason="transient:timeout")
    state.read(MODELS, job_id="before-flush")
    # When the server forgets every script (as after a restart without them)
    client.script_flush()
    # Then the next read still counts the delivery and reads the flags
    snapshot = state.read(MODELS, job_id="after-flush")
    assert (snapshot.delivery, snapshot.busy, snapshot.healthy) == (1, {MODELS[0]}, True)


def test_flags_show_reason_and_time_left(state: RoutingState) -> None:
    state.mark_busy(MODELS[0], ttl_s=7, reason="transient:rate_limited")
    flag = state.flags(MODELS)[MODELS[0]]
    assert flag.reason == "transient:rate_limited"
    assert 6 < flag.ttl_s <= 7


def test_unreadable_redis_routes_as_if_nothing_were_busy_and_counts_it() -> None:
    server = PrivateRedis(appendonly=False).start()
    client = Client.from_url(db_url(server.url, 1), socket_timeout=0.5, socket_connect_timeout=0.5)
    metrics = Metrics()
    state = RoutingState(client, Keys("x:"), metrics)
    state.mark_busy(MODELS[0], ttl_s=60, reason="transient:unavailable")
    server.stop()
    snapshot = state.read(MODELS, job_id="job-3")
    assert (snapshot.busy, snapshot.healthy) == (frozenset(), False)
    assert metrics.snapshot()["state:busy_read_failed"] == 1
