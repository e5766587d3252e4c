"""Live routing control through real workers: drains, rollbacks, shared limits, circuits, budgets."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import JobResult
from operators.control import shadow_table
from producers.client import submit
from tests.catalogs import GPT_4O_MINI, MISTRAL_LARGE, MISTRAL_SMALL, Tier, catalog_toml
from tests.conftest import _next_database
from tests.llm_server import LLMServer
from tests.support import RunningWorker, running_worker
from worker import overlay as ov
from worker.catalog import load_catalog, parse_catalog
from worker.circuit import Circuit, parse_stored
from worker.overlay_store import OverlayStore
from worker.providers.simulated import Behaviour, Script
from worker.shadow import read_shadow

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"
HELLO = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]


@contextmanager
def worker_pair(base_url: str, tmp: Path, env: dict[str, Any]) -> Iterator[tuple[RunningWorker, RunningWorker]]:
    """Two real workers on one Redis database (one broker, one routing state)."""
    db = _next_database()
    with ExitStack() as stack:
        first = stack.enter_context(running_worker(base_url, db, tmp, env=env))
        second = stack.enter_context(running_worker(base_url, db, tmp, env=env))
        yield first, second


def wait_for(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.02)


_asked = itertools.count()


def question() -> list[dict[str, str]]:
    """A new conversation each time: the simulator draws its errors from the text."""
    return [{"role": "user", "content": f"Summarise ticket {next(_asked)} in two sentences."}]


def run(worker: RunningWorker, jobs: int, **options: Any) -> list[JobResult]:
    handles = [submit(question(), app=worker.app, **options) for _ in range(jobs)]
    return [h.result(timeout=60) for h in handles]


def store(worker: RunningWorker) -> OverlayStore:
    return OverlayStore(worker.redis, worker.keys)


def test_a_drain_reaches_both_workers_within_2s_and_a_rollback_undoes_it(
    redis_base_url: str, tmp_path: Path
) -> None:
    with worker_pair(redis_base_url, tmp_path, {"TIERLINE_CONCURRENCY": 2}) as (one, two):
        one.script(Script(default=Behaviour(latency_ms=30)))
        running = [submit(HELLO, app=one.app) for _ in range(8)]  # jobs in flight during the change
        catalog = load_catalog()

        drained = store(one).change(lambda o: ov.drain(o, SMALL), catalog, by="test", what="drain")
        changed_at = time.monotonic()
        after = [submit(HELLO, app=one.app) for _ in range(24)]
        for worker in (one, two):
            wait_for(lambda w=worker: f"overlay version {drained.number} applied" in w.log(), timeout_s=2.0,
                     what=f"{worker.name} applies the drain")
        assert time.monotonic() - changed_at < 2.0
        assert all(h.result(timeout=60).ok for h in running)
        assert {h.result(timeout=60).model for h in after} == {MEDIUM}

        back = store(one).rollback(0, catalog, by="test")
        again = run(one, 12)
        assert {r.model for r in again} == {SMALL}
        for worker in (one, two):
            wait_for(lambda w=worker: f"overlay version {back.number} applied" in w.log(), timeout_s=2.0,
                     what=f"{worker.name} applies the rollback")


def test_a_weighted_canary_splits_a_tier_through_a_worker(
    worker_factory: Callable[..., Any], tmp_path: Path
) -> None:
    catalog_file = tmp_path / "canary.toml"
    catalog_file.write_text(catalog_toml(Tier("small", (MISTRAL_SMALL, GPT_4O_MINI), max_tokens=3000),
                                         Tier("large", (MISTRAL_LARGE,))))
    with worker_factory(env={"TIERLINE_CATALOG_PATH": str(catalog_file)}) as w:
        store(w).change(lambda o: ov.set_weights(o, "small", {SMALL: 80, GPT_4O_MINI.name: 20}),
                        parse_catalog(catalog_file.read_text()), by="test", what="canary")
        models = [r.model for r in run(w, 100)]
    # 100 jobs: the binomial spread of a 20% share is 4 points (the 1,000-job ±3 check is pure).
    assert 8 <= models.count(GPT_4O_MINI.name) <= 32 and models.count(SMALL) + models.count(GPT_4O_MINI.name) == 100


WINDOW_S = 3.0
LIMIT = 10


def on_loopback(llm_server: LLMServer, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A small and a large Mistral model on the loopback server: the catalog file and the
    worker's environment (the server's records cleared)."""
    llm_server.reset()
    catalog_file = tmp / "limited.toml"
    catalog_file.write_text(catalog_toml(
        Tier("small", (MISTRAL_SMALL,), max_tokens=3000, timeout_s=5.0), Tier("large", (MISTRAL_LARGE,))))
    env = {"MISTRAL_API_KEY": "sk-test-limit", "TIERLINE_MISTRAL_BASE_URL": llm_server.url,
           "TIERLINE_CATALOG_PATH": str(catalog_file)}
    return catalog_file, env


@pytest.mark.timeout(180)
def test_two_workers_share_a_limit_counted_at_the_provider(
    redis_base_url: str, tmp_path: Path, llm_server: LLMServer
) -> None:
    catalog_file, env = on_loopback(llm_server, tmp_path)
    env["TIERLINE_RATE_LIMIT_WINDOW_S"] = WINDOW_S
    with worker_pair(redis_base_url, tmp_path, env) as (one, two):
        # A fresh process's first call pays the SDK's lazy set-up between admission and the
        # request: warm every process up first, so the server sees calls when they were admitted.
        assert all(r.ok for r in run(one, 24, pin_model=LARGE))
        llm_server.reset()
        store(one).change(lambda o: ov.set_limit(o, SMALL, ov.RateLimit(rpm=LIMIT)),
                          parse_catalog(catalog_file.read_text()), by="test", what="limit")
        results = [r for _ in range(3) for r in run(one, 24)]

    assert all(r.ok for r in results)
    small = sorted(s.at for s in llm_server.requests(SMALL))
    assert len(small) >= LIMIT and llm_server.count(LARGE) > 0  # the limit was reached, and bit
    # Admission times are Redis's; arrival times at the server trail them by a few ms each,
    # so the windows checked here are that much shorter than the limit's.
    busiest = max(sum(1 for t in small if start <= t < start + WINDOW_S - 0.1) for start in small)
    assert busiest <= LIMIT, small


@pytest.mark.timeout(180)
def test_thirty_percent_errors_open_the_circuit_and_good_probes_close_it(
    worker_factory: Callable[..., Any]
) -> None:
    env = {"TIERLINE_HEALTH_WINDOW_S": 30, "TIERLINE_HEALTH_BUCKET_S": 1, "TIERLINE_HEALTH_MIN_SAMPLES": 10,
           "TIERLINE_HEALTH_OPEN_S": 1, "TIERLINE_HEALTH_PROBE_SHARE": PROBE_SHARE,
           "TIERLINE_HEALTH_PROBE_SAMPLES": 4, "TIERLINE_BUSY_TTL_S": 0.01}  # flags would hide the rate
    with worker_factory(env=env) as w:
        w.script(Script(models={SMALL: Behaviour(error_rate=0.3, error="server_error")}))
        opened = _jobs_until(w, Circuit.OPEN)
        # Closed: jobs start at small (but for the few right after a failure, while its 10 ms
        # busy flag lasts).
        assert sum(first == SMALL for _, first in opened) >= len(opened) // 2
        w.script(Script())  # the error rate drops
        demoted = _jobs_until(w, Circuit.CLOSED)
        probes = sum(1 for state, first in demoted if state is Circuit.OPEN and first == SMALL)
        while_demoted = sum(1 for state, _ in demoted if state is Circuit.OPEN)
        # Probes were bounded: about PROBE_SHARE of the jobs while demoted, never the whole flow.
        assert 4 <= probes <= PROBE_SHARE * while_demoted + 4, (probes, while_demoted)
        assert {r.model for r in run(w, 5)} == {SMALL}


PROBE_SHARE = 0.2


def _jobs_until(w: RunningWorker, state: Circuit) -> list[tuple[Circuit, str]]:
    """Run one job at a time until the circuit of small is stored as `state`; each job's
    circuit (as stored when it was sent) and the model it tried first."""
    seen: list[tuple[Circuit, str]] = []
    deadline = time.monotonic() + 90
    while (now := parse_stored(w.redis.get(w.keys.circuit(SMALL))).state) is not state:
        assert time.monotonic() < deadline, f"the circuit never became {state.value}: {seen[-20:]}"
        [result] = run(w, 1)
        seen.append((now, result.attempts[0].model))
    return seen


def test_a_team_over_its_budget_is_refused_or_sent_to_the_cheapest_tier(worker: RunningWorker) -> None:
    catalog = load_catalog()
    s = store(worker)
    s.change(lambda o: ov.set_budget(ov.set_budget(o, "acme", ov.Budget(usd_per_day=1e-9, action="refuse")),
                                     "beta", ov.Budget(usd_per_day=1e-9, action="cheapest")),
             catalog, by="test", what="budgets")
    try:
        long_text = [{"role": "user", "content": "word " * 5_000}]  # the medium tier's volume
        first = submit(long_text, app=worker.app, metadata={"team": "beta"}).result(timeout=30)
        assert first.ok and first.tier == "medium"

        def refused() -> bool:
            error = run(worker, 1, metadata={"team": "acme"})[0].error
            return error is not None and error.code == "budget_exceeded"

        wait_for(refused, timeout_s=20, what="acme's jobs are refused")
        wait_for(lambda: submit(long_text, app=worker.app, metadata={"team": "beta"}).result(timeout=30).tier
                 == "small", timeout_s=20, what="beta's jobs go to the cheapest tier")
        assert run(worker, 1, metadata={"team": "gamma"})[0].ok
    finally:
        s.rollback(0, catalog, by="test")


def test_a_shadow_models_answers_never_reach_a_job_result(worker: RunningWorker) -> None:
    catalog = load_catalog()
    s = store(worker)
    s.change(lambda o: ov.set_shadow(o, ov.Shadow(model=LARGE, share=1.0)), catalog, by="test", what="shadow")
    try:
        results = run(worker, 12)
        assert all(r.ok and r.model == SMALL for r in results)
        assert all(a.model != LARGE for r in results for a in r.attempts)
        wait_for(lambda: int(worker.redis.hget(worker.keys.shadow(LARGE), "jobs") or 0) >= 12, timeout_s=30,
                 what="every job shadowed")
        stats = read_shadow(worker.redis, worker.keys, LARGE)
        assert stats["shadow_passed"] == 12 and stats["live_passed"] == 12
        assert stats["shadow_cost_usd"] > stats["live_cost_usd"] > 0  # large costs more than small
        assert shadow_table({LARGE: stats}).row_count == 1
    finally:
        s.rollback(0, catalog, by="test")


@pytest.mark.parametrize("left", [
    {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"},
    # tokens: fewer than a job reserves (its routed tokens plus its 1,024-token output budget)
    {"x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "30s",
     "x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-requests": "20ms"},
], ids=["no-calls-left", "too-few-tokens-left"])
def test_a_providers_rate_limit_headers_tighten_the_shared_limit(
    redis_base_url: str, tmp_path: Path, llm_server: LLMServer, left: dict[str, str]
) -> None:
    catalog_file, env = on_loopback(llm_server, tmp_path)
    with running_worker(redis_base_url, _next_database(), tmp_path, env=env) as worker:
        # Given a generous shared limit on the small model, whose provider says, on its
        # first answer, that too little is left for the next 30 s
        store(worker).change(lambda o: ov.set_limit(o, SMALL, ov.RateLimit(rpm=1000, tpm=10_000_000)),
                             parse_catalog(catalog_file.read_text()), by="test", what="limit")
        llm_server.answer(SMALL, headers=left)
        # When jobs come one after another
        results = [run(worker, 1)[0] for _ in range(6)]
    # Then the small model got one call, and the others went to the next candidate
    assert all(r.ok for r in results)
    assert [r.model for r in results] == [SMALL] + [LARGE] * 5
    assert llm_server.count(SMALL) == 1
