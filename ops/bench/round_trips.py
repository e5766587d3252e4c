"""Redis round trips a job makes on its way, counted by the Redis servers themselves.

The routing state gets a Redis server of its own (``TIERLINE_STATE_URL``), so its
``INFO commandstats`` holds only what workers do for routing (commands run inside a
script count there too); the workers reach it through a relay that counts round trips
(a request sent after the last answer: a script call or a pipeline is one). The broker
and results server also serves this producer (sending, polling results), so its counts
include those. Live control is on: an overlay with a shared limit on the small model
(high enough never to refuse), a budget for the team every job names, health windows.

    python -m ops.bench.round_trips [--jobs 400] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
from rich.console import Console
from rich.table import Table

from contract.names import QUEUE_CONVERSATIONS, TASK_COMPLETE
from operators.embedded import PrivateRedis
from operators.samples import conversation
from operators.services import WorkerSpec, background_worker
from producers.client import producer_app_for
from worker import overlay as ov
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.overlay_store import OverlayStore

PREFIX = "bench:"


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, dict[str, int]] = client.info("commandstats")  # type: ignore[assignment]
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class RoundTrips:
    """Counts requests that reach the relay's server after its last answer, per connection."""

    def __init__(self) -> None:
        self.count = 0

    async def relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter, host: str, port: int) -> None:
        server, to_server = await asyncio.open_connection(host, port)
        answered = [True]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, request: bool) -> None:
            while data := await source.read(65536):
                if request and answered[0]:
                    self.count += 1
                answered[0] = not request
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(client, to_server, request=True), pipe(server, to_client, request=False),
                             return_exceptions=True)


@contextmanager
def counting_relay(url: str) -> Iterator[tuple[str, RoundTrips]]:
    """A loopback relay in front of the Redis server at `url`: (the URL through it, its counter)."""
    target = urlsplit(url)
    trips = RoundTrips()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.base_events.Server] = {}

    async def start() -> None:
        holder["server"] = await asyncio.start_server(
            lambda r, w: trips.relay(r, w, target.hostname or "127.0.0.1", target.port or 6379), "127.0.0.1", 0)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    port = holder["server"].sockets[0].getsockname()[1]
    auth = target.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    try:
        yield urlunsplit(target._replace(netloc=netloc)), trips
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def run_jobs(url: str, jobs: int) -> None:
    app = producer_app_for(url, url)
    rng = random.Random(5)
    ids = []
    for _ in range(jobs):
        task_id = str(uuid.uuid4())
        job = {"messages": conversation(rng, rng.randint(20, 300)), "metadata": {"team": "acme"}}
        app.send_task(TASK_COMPLETE, kwargs={"job": job}, task_id=task_id, argsrepr="-", kwargsrepr="{}")
        ids.append(task_id)
    for _ in app.backend.get_many(ids, timeout=600, interval=0.05):
        pass


def measure(jobs: int, concurrency: int) -> Table:
    with PrivateRedis(appendonly=False) as broker, PrivateRedis(appendonly=False) as state, \
            counting_relay(state.url) as (relayed, trips):
        state_client, broker_client = redis.Redis.from_url(state.url), redis.Redis.from_url(broker.url)
        store = OverlayStore(state_client, Keys(PREFIX))
        catalog = load_catalog()
        store.change(lambda o: ov.set_budget(ov.set_limit(o, "mistral-small-latest", ov.RateLimit(rpm=10**9)),
                                             "acme", ov.Budget(usd_per_day=10**6)), catalog, by="bench", what="bench")
        env = dict(os.environ, REDIS_URL=broker.url, TIERLINE_STATE_URL=relayed, TIERLINE_KEY_PREFIX=PREFIX,
                   TIERLINE_CONCURRENCY=str(concurrency))
        spec = WorkerSpec(concurrency, name=f"rt-{uuid.uuid4().hex[:6]}@localhost", queues=QUEUE_CONVERSATIONS)
        with background_worker(producer_app_for(broker.url, broker.url), env, spec):
            run_jobs(broker.url, 40)  # warm up: scripts loaded, overlay applied, SDK-free simulated calls
            state_client.config_resetstat()
            broker_client.config_resetstat()
            before = trips.count
            run_jobs(broker.url, jobs)
            routing, celery = commandstats(state_client), commandstats(broker_client)
            round_trips = trips.count - before
    table = Table(title=f"Redis commands per job ({jobs} jobs, {concurrency} worker processes, live control on)")
    for column in ("server", "command", "per job"):
        table.add_column(column, justify="right")
    table.add_row("routing state", "round trips (all commands)", f"{round_trips / jobs:.3f}")
    for server, stats in (("routing state", routing), ("broker + results (+ this producer)", celery)):
        for name, calls in sorted(stats.items(), key=lambda kv: -kv[1]):
            if name not in ("config|resetstat", "config", "info"):
                table.add_row(server, name, f"{calls / jobs:.3f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    Console(width=120).print(measure(args.jobs, args.concurrency))


if __name__ == "__main__":
    main()
