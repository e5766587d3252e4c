"""Redis round trips a job makes on its way, counted by the Redis servers themselves.

The routing state gets a Redis server of its own (``TIERLINE_STATE_URL``), so its
``INFO commandstats`` holds only what workers do for routing; the broker and results
server also serves this producer (sending, polling results), so its counts include
those. Live control is on: an overlay with a shared limit on the small model (high
enough never to refuse), a budget for the team every job names, health windows.

    python -m ops.bench.round_trips [--jobs 400] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import random
import uuid

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
    with PrivateRedis(appendonly=False) as broker, PrivateRedis(appendonly=False) as state:
        state_client, broker_client = redis.Redis.from_url(state.url), redis.Redis.from_url(broker.url)
        store = OverlayStore(state_client, Keys(PREFIX))
        catalog = load_catalog()
        store.change(lambda o: ov.set_budget(ov.set_limit(o, "mistral-small-latest", ov.RateLimit(rpm=10**9)),
                                             "acme", ov.Budget(usd_per_day=10**6)), catalog, by="bench", what="bench")
        env = dict(os.environ, REDIS_URL=broker.url, TIERLINE_STATE_URL=state.url, TIERLINE_KEY_PREFIX=PREFIX,
                   TIERLINE_CONCURRENCY=str(concurrency))
        spec = WorkerSpec(concurrency, name=f"rt-{uuid.uuid4().hex[:6]}@localhost", queues=QUEUE_CONVERSATIONS)
        with background_worker(producer_app_for(broker.url, broker.url), env, spec):
            run_jobs(broker.url, 40)  # warm up: scripts loaded, overlay applied, SDK-free simulated calls
            state_client.config_resetstat()
            broker_client.config_resetstat()
            run_jobs(broker.url, jobs)
            routing, celery = commandstats(state_client), commandstats(broker_client)
    table = Table(title=f"Redis commands per job ({jobs} jobs, {concurrency} worker processes, live control on)")
    for column in ("server", "command", "per job"):
        table.add_column(column, justify="right")
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
