"""The one batching of metrics, health windows and spend: amounts added in memory, one
pipeline at most once a second, put back when Redis refuses the write."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.operators.scrape import free_port
from worker import series as S
from worker.budget import read_spend
from worker.flushing import Batched
from worker.keys import METRICS_TTL_S, Keys
from worker.metrics import Metrics, Sink, read_metrics, read_series

KEYS = Keys("flush-test:")


@pytest.fixture
def client(idle_db_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(idle_db_url) as c:
        yield c


def _nowhere() -> redis.Redis:
    """A client of a port nothing listens on: every write fails with a connection error."""
    return redis.Redis(port=free_port(), socket_connect_timeout=0.5)


def test_a_flush_is_due_once_a_period_and_forced_at_will() -> None:
    written: list[dict[str, float]] = []
    batched: Batched[str] = Batched("test", every_s=3600)
    batched.add("a", 2)
    batched.add_all([("a", 1), ("b", 0.5)])
    batched.maybe_flush(written.append)
    assert written == [] and batched.pending() == {"a": 3, "b": 0.5}
    batched.maybe_flush(written.append, force=True)
    assert written == [{"a": 3, "b": 0.5}] and batched.pending() == {}


def test_metrics_refused_by_redis_are_kept_and_written_once_it_answers(client: redis.Redis) -> None:
    # Given counters and series recorded while Redis is away
    metrics = Metrics(flush_every_s=3600, bucket_s=60)
    metrics.incr("attempts:ok", 2)
    metrics.count(S.JOBS, ("succeeded", "none", "small", "tokens"))
    metrics.observe(S.ROUTING_OVERHEAD, ("tierline.complete",), 0.002)
    metrics.maybe_flush(Sink(_nowhere(), KEYS, 60, 600, METRICS_TTL_S), force=True)
    # Then nothing is lost
    assert metrics.snapshot() == {"attempts:ok": 2}
    assert sum(metrics.pending_series().values()) > 0
    # and the next flush to a Redis that answers writes them, once, in every hash
    metrics.incr("attempts:ok")
    metrics.maybe_flush(Sink(client, KEYS, 60, 600, METRICS_TTL_S), force=True)
    assert read_metrics(client, KEYS.metrics) == {"attempts:ok": 3}
    total = read_series(client, KEYS.series_total)
    assert total[S.field(S.JOBS, ("succeeded", "none", "small", "tokens"))] == 1
    assert total[S.field(S.ROUTING_OVERHEAD, ("tierline.complete",), "_count")] == 1
    [bucket] = client.zrange(KEYS.series_index, 0, -1)
    assert read_series(client, bucket.decode()) == total
    assert metrics.snapshot() == {} and metrics.pending_series() == {}


def test_a_write_redis_refuses_is_put_back_and_written_once_later(client: redis.Redis) -> None:
    # The spend ledger's and the health windows' flushes go through the same Batched
    batched: Batched[str] = Batched("test", every_s=3600)

    def write_to(target: redis.Redis) -> Callable[[dict[str, float]], None]:
        def write(pending: dict[str, float]) -> None:
            pipe = target.pipeline(transaction=False)
            for key, amount in pending.items():
                pipe.incrbyfloat(KEYS.spend("2026-12-02", key), amount)
            pipe.execute()
        return write

    batched.add("ops", 0.25)
    batched.maybe_flush(write_to(_nowhere()), force=True)
    assert batched.pending() == {"ops": 0.25}
    batched.add("ops", 0.5)
    batched.maybe_flush(write_to(client), force=True)
    assert read_spend(client, KEYS, ["ops"], "2026-12-02") == {"ops": 0.75} and batched.pending() == {}
