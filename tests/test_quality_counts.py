"""Provider failures and quality failures are counted apart (a router in this process)."""

from __future__ import annotations

import time

from contract.schemas import Carry, Job
from tests.support import RunningWorker
from worker.catalog import load_catalog
from worker.keys import Keys
from worker.metrics import Metrics
from worker.providers.simulated import Behaviour, Outage, Script, SimulatedProvider
from worker.record import JobRecord
from worker.router import Escalate, Router, RouterConfig
from worker.state import RoutingState
from worker.tokens import TokenCounter

SMALL, MEDIUM = "mistral-small-latest", "mistral-medium-latest"


def test_an_outage_and_a_refusal_land_in_different_counters(worker: RunningWorker) -> None:
    # Given small down and medium refusing, on a router sharing the test worker's Redis
    now = time.time()
    script = Script(models={
        SMALL: Behaviour(outages=(Outage(start=now - 1, end=now + 60),)),
        MEDIUM: Behaviour(poor_rate=1.0, poor="refusal"),
    })
    catalog, counter, metrics = load_catalog(), TokenCounter(), Metrics()
    provider = SimulatedProvider(lambda: script, counter)
    router = Router(
        catalog=catalog, providers={m: provider for m in catalog.model_names},
        state=RoutingState(worker.redis, Keys("counts-test:"), metrics), counter=counter,
        metrics=metrics, config=RouterConfig(backoff_s=0),
    )
    job = Job.model_validate({"messages": [{"role": "user", "content": "Where is my parcel?"}]})
    record = JobRecord("counted", Carry(started_at=now), deadline=time.monotonic() + 10)
    # When the job is routed
    decision = router.route(job, record, frozenset())
    # Then it escalates past medium, and each failure has its own counter
    assert isinstance(decision, Escalate) and decision.carry.min_tier == 2
    counts = metrics.snapshot()
    assert counts["attempts:transient"] == 1 and counts["attempts:ok"] == 1
    assert counts["quality:refusal"] == 1
    assert not any(name.startswith("jobs:") for name in counts)
    worker.redis.delete(Keys("counts-test:").busy(SMALL))
