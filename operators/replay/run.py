"""One replay, end to end: read the workload, route it, count it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from operators.replay.engine import Replayer
from operators.replay.scenario import Scenario
from operators.replay.tally import Tally
from operators.replay.workload import Request, read
from worker.catalog import Catalog


def replay_requests(requests: Iterable[Request], scenario: Scenario, *, catalog: Catalog | None = None,
                    policy: str | None = None, run_id: str = "replay", time_scale: float = 1.0,
                    job_ids: Iterable[str] | None = None) -> Tally:
    """Route `requests` under `scenario` and count what happened (job ids: see `Replayer.replay`)."""
    catalog = catalog or scenario.build_catalog()
    replayer = Replayer(scenario, catalog, policy=policy, run_id=run_id, time_scale=time_scale)
    tally = Tally([t.name for t in catalog.tiers])
    for served in replayer.replay(requests, job_ids):
        tally.add(served)
    return tally


Source = Callable[[Catalog], Iterable[Request]]


def replay_source(source: Source, name: str, scenario: Scenario, *, policy: str | None = None) -> dict[str, Any]:
    """The summary of replaying the requests `source` gives for the scenario's catalog."""
    catalog = scenario.build_catalog()
    tally = replay_requests(source(catalog), scenario, catalog=catalog, policy=policy)
    return {"policy": policy or scenario.policy, "trace": name, **tally.summary()}


def file_source(path: Path, *, tokenizer: str | None = None) -> Source:
    """The workload file at `path` (JSONL counted with the catalog's small threshold as bound)."""
    return lambda catalog: read(path, tokenizer=tokenizer, small_tokens=catalog.tiers[0].max_tokens)


def replay_file(path: Path, scenario: Scenario, *, policy: str | None = None,
                tokenizer: str | None = None) -> dict[str, Any]:
    """The summary of replaying the workload at `path` (see `Tally.summary`)."""
    return replay_source(file_source(path, tokenizer=tokenizer), path.name, scenario, policy=policy)
