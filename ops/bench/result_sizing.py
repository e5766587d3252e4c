"""What results and queued messages cost: bytes per result on Redis and PostgreSQL, bytes per message.

A real worker (simulated provider) produces three real JobResults: a short answer, an
extraction (its `parsed` JSON and its content) and an escalated answer; a long answer is
the short one with a 4,000-character content (about 1,000 tokens, the default output
budget). Each kind is then stored `--copies` times under fresh task ids through Celery's
own result backends (the worker's write path): on Redis and on a PostgreSQL database of
the benchmark's own (Celery's database backend).

Measured:
- Redis: ``MEMORY USAGE`` of a result key (the value, the key, its allocation), and the
  growth of ``used_memory`` per result (adds the expiry entry and the keyspace's share);
  the same for a ``tierline-collected-<id>`` marker.
- PostgreSQL: ``pg_column_size`` of a row, and the growth of
  ``pg_total_relation_size('celery_taskmeta')`` (heap, TOAST, both indexes) per row; a
  released row (status COLLECTED, no result) too.
- The broker: ``MEMORY USAGE`` of the queue list and ``used_memory`` growth per message
  waiting in a queue nobody consumes, for a short (~150 words) and a long (~2,000 words)
  conversation.

Then the projection: for 10k, 1M and 10M jobs a day under the default expiry (a day;
database rows live up to the expiry plus one cleanup period, an hour), results held and
an hour of backlog on the broker.

    python -m ops.bench.result_sizing [--copies 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from celery import Celery, states
from kombu.utils.encoding import ensure_bytes
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, insert, text

from operators.embedded import PrivateRedis
from operators.samples import conversation
from operators.services import WorkerSpec, background_worker
from ops.bench.scratch_db import SERVER_URL, PostgresServer
from producers.client import producer_app_for, send_job, submit
from producers.extraction import submit_extraction
from results import store_for
from worker.keys import Keys
from worker.providers.simulated import Behaviour, Script, publish_script

PREFIX = "bench-sizing:"
DAY_S = 86_400
EXPIRY_S = 86_400
CLEANUP_S = 3_600
SCHEMA = {"type": "object", "properties": {
    "parties": {"type": "array", "items": {"type": "string"}}, "effective_date": {"type": "string"},
    "amount": {"type": "string"}, "governing_law": {"type": "string"}, "summary": {"type": "string"}}}
DOCUMENT = " ".join(
    "This services agreement between Northwind Trading Ltd and Contoso Logistics GmbH takes effect "
    "on 1 March 2026 for a fee of EUR 48,000 and is governed by the laws of Ireland.".split() * 8)
# ~4,000 characters of words drawn at random (not one sentence repeated, which the
# database's TOAST compression would shrink to nothing).
LONG_TEXT = conversation(random.Random(3), 640)[1]["content"]


@dataclass(frozen=True)
class Size:
    kind: str
    redis_key: float
    redis_used: float
    pg_row: float
    pg_table: float


def sample_results(app: Celery, redis_url: str) -> dict[str, dict[str, Any]]:
    """Real JobResults from a real worker: short, long (content widened), extraction, escalated."""
    short = submit(conversation(random.Random(1), 150), app=app).result(timeout=60)
    extraction = submit_extraction(DOCUMENT, SCHEMA, app=app).result(timeout=60)
    publish_script(redis.Redis.from_url(redis_url), Keys(PREFIX).sim_script,
                   Script(models={"mistral-small-latest": Behaviour(poor_rate=1.0, poor="refusal")}), ttl_s=600)
    escalated = submit(conversation(random.Random(2), 150), app=app).result(timeout=60)
    assert short.ok and extraction.ok and escalated.ok and escalated.escalations, (short, extraction, escalated)
    long = short.model_copy(update={"content": LONG_TEXT, "answer_tokens": (short.answer_tokens[0], 1000)})
    return {kind: r.model_dump(mode="json") for kind, r in
            [("short answer", short), ("long answer (~1,000 tokens)", long), ("extraction", extraction),
             ("escalated once (2 generations)", escalated)]}


def redis_sizes(url: str, result: dict[str, Any], copies: int) -> tuple[float, float]:
    """(MEMORY USAGE of one result key, used_memory growth per result)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = producer_app_for(url, url)
    ids = [str(uuid.uuid4()) for _ in range(copies)]
    before = _used(client)
    for task_id in ids:
        app.backend.store_result(task_id, result, states.SUCCESS)
    grown = (_used(client) - before) / copies
    keys = [app.backend.get_key_for_task(i) for i in ids[:50]]
    per_key = sum(int(client.memory_usage(k) or 0) for k in keys) / len(keys)
    client.flushdb()
    return per_key, grown


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def pg_sizes(url: str, result: dict[str, Any], copies: int) -> tuple[float, float]:
    """(pg_column_size of one row, total relation size growth per row).

    A few rows go through Celery's own `store_result` (the worker's write); the bulk
    copies are the same row (Celery's columns, the result JSON-encoded by the backend)
    inserted in one statement, since Celery's backend outside a worker opens a
    connection per write. The two row sizes are checked equal.
    """
    app = producer_app_for("memory://", url)
    backend = app.backend
    engine = create_engine(url.removeprefix("db+"))
    store_for(backend)  # creates Celery's tables
    with engine.begin() as c:
        c.execute(text("TRUNCATE celery_taskmeta"))
    for _ in range(5):
        backend.store_result(str(uuid.uuid4()), result, states.SUCCESS)
    celery_row = _avg_row(engine)
    before = _relation(engine)
    payload = ensure_bytes(backend.encode(result))  # as Celery's _update_result does
    table = backend.task_cls.__table__
    with engine.begin() as c:
        c.execute(insert(table), [{"task_id": str(uuid.uuid4()), "status": states.SUCCESS, "result": payload,
                                   "date_done": datetime.now(UTC)} for _ in range(copies)])
    grown = (_relation(engine) - before) / copies
    row = _avg_row(engine)
    engine.dispose()
    assert abs(row - celery_row) < 8, (row, celery_row)  # the same row as the worker writes
    return row, grown


def _avg_row(engine: Any) -> float:
    with engine.connect() as c:
        return float(c.execute(text("SELECT avg(pg_column_size(t.*)) FROM celery_taskmeta t")).scalar_one())


def _relation(engine: Any) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT pg_total_relation_size('celery_taskmeta')")).scalar_one())


def marker_sizes(redis_url: str, pg_url: str) -> tuple[float, float]:
    """(MEMORY USAGE of a Redis marker, pg_column_size of a released row)."""
    rapp, papp = producer_app_for(redis_url, redis_url), producer_app_for("memory://", pg_url)
    ids = [str(uuid.uuid4()) for _ in range(50)]
    for app in (rapp, papp):
        for task_id in ids:
            app.backend.store_result(task_id, {"status": "succeeded"}, states.SUCCESS)
        store_for(app.backend).release(ids)
    client = redis.Redis.from_url(redis_url)
    on_redis = sum(int(client.memory_usage(f"tierline-collected-{i}") or 0) for i in ids) / len(ids)
    engine = create_engine(pg_url.removeprefix("db+"))
    with engine.connect() as c:
        on_pg = float(c.execute(text(
            "SELECT avg(pg_column_size(t.*)) FROM celery_taskmeta t WHERE status = 'COLLECTED'")).scalar_one())
    engine.dispose()
    client.flushdb()
    return on_redis, on_pg


def broker_sizes(url: str, copies: int) -> dict[str, tuple[float, float]]:
    """Per queued message: (MEMORY USAGE of the queue / messages, used_memory growth / messages)."""
    client = redis.Redis.from_url(url)
    sender = producer_app_for(url, "")
    out = {}
    for label, words in (("short conversation (~150 words)", 150), ("long conversation (~2,000 words)", 2000)):
        client.flushdb()
        rng = random.Random(words)
        jobs = [{"messages": conversation(rng, words)} for _ in range(copies)]
        before = _used(client)
        for job in jobs:
            send_job(job, app=sender)
        grown = (_used(client) - before) / copies
        queue = int(client.memory_usage("conversations", samples=0) or 0) / copies
        out[label] = (queue, grown)
    client.flushdb()
    return out


def measure(redis_url: str, pg_url: str, copies: int, folder: Path) -> tuple[list[Size], tuple[float, float],
                                                                             dict[str, tuple[float, float]]]:
    base = redis_url.rsplit("/", 1)[0]  # the private server's URL ends in /0
    worker_db, sizing_db, broker_db = (f"{base}/{n}" for n in (1, 2, 3))
    app = producer_app_for(worker_db, worker_db)
    env = dict(os.environ, REDIS_URL=worker_db, TIERLINE_KEY_PREFIX=PREFIX, TIERLINE_PROVIDER_MODE="simulated",
               TIERLINE_SIM_REFRESH_S="0")
    with background_worker(app, env, WorkerSpec(2, name="bench-sizing@localhost"), log_path=folder / "worker.log"):
        samples = sample_results(app, worker_db)
    sizes = []
    for kind, result in samples.items():
        key, used = redis_sizes(sizing_db, result, copies)
        row, table = pg_sizes(pg_url, result, copies)
        sizes.append(Size(kind, key, used, row, table))
    return sizes, marker_sizes(sizing_db, pg_url), broker_sizes(broker_db, copies)


def _mb(value: float) -> str:
    return f"{value / 1e9:,.1f} GB" if value >= 1e9 else f"{value / 1e6:,.1f} MB"


def tables(sizes: list[Size], markers: tuple[float, float], broker: dict[str, tuple[float, float]]) -> list[Table]:
    per = Table(title="bytes per stored result (Celery's result backends)")
    for column in ("result", "Redis MEMORY USAGE", "Redis used_memory / result", "PG pg_column_size",
                   "PG table+TOAST+indexes / row"):
        per.add_column(column, justify="right")
    for s in sizes:
        per.add_row(s.kind, f"{s.redis_key:,.0f}", f"{s.redis_used:,.0f}", f"{s.pg_row:,.0f}", f"{s.pg_table:,.0f}")
    per.add_row("collected marker", f"{markers[0]:,.0f}", "", f"{markers[1]:,.0f}", "")
    projection = Table(title=f"held under the default expiry ({EXPIRY_S // 3600} h; database rows up to "
                             f"{(EXPIRY_S + CLEANUP_S) // 3600} h) and an hour of broker backlog")
    for column in ("jobs/day", *[f"Redis: {s.kind}" for s in sizes[:3]], *[f"PG: {s.kind}" for s in sizes[:3]],
                   *[f"broker 1 h: {k.split(' (')[0]}" for k in broker]):
        projection.add_column(column, justify="right")
    for jobs in (10_000, 1_000_000, 10_000_000):
        held, rows = jobs * EXPIRY_S / DAY_S, jobs * (EXPIRY_S + CLEANUP_S) / DAY_S
        projection.add_row(f"{jobs:,}", *[_mb(held * s.redis_used) for s in sizes[:3]],
                           *[_mb(rows * s.pg_table) for s in sizes[:3]],
                           *[_mb(jobs / 24 * used) for _, used in broker.values()])
    queue = Table(title="bytes per message waiting on the Redis broker")
    for column in ("message", "queue MEMORY USAGE / message", "used_memory / message"):
        queue.add_column(column, justify="right")
    for label, (per_queue, used) in broker.items():
        queue.add_row(label, f"{per_queue:,.0f}", f"{used:,.0f}")
    return [per, queue, projection]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=1000)
    args = parser.parse_args()
    server = PostgresServer(SERVER_URL)
    why = server.reachable()
    if why is not None:
        raise SystemExit(f"PostgreSQL at {SERVER_URL} did not answer: {why}")
    with tempfile.TemporaryDirectory(prefix="tierline-bench-sizing-") as tmp, \
            PrivateRedis(appendonly=False) as redis_server, server.database() as pg_url:
        sizes, markers, broker = measure(redis_server.url, pg_url, args.copies, Path(tmp))
    console = Console(width=200)
    for table in tables(sizes, markers, broker):
        console.print(table)


if __name__ == "__main__":
    main()
