"""Shadow routing: a share of jobs also goes to a shadow model, whose answer is only recorded.

After a conversation job's JobResult is decided, `wanted` (pure) says whether to shadow it;
the task then sends a `tierline.shadow` task (the job, and a summary of the live answer:
model, cost, latency, whether it passed the quality gate at once). That task calls the
shadow model once through the router's attempt loop (so shared limits, health windows and
busy flags see it), checks its answer with the job's quality checks, and adds both sides
to ``<prefix>shadow:<model>``. It stores no result: the producer never sees the answer.

The hash, for `tierline control shadow-report` and `tierline report`: ``jobs``,
``shadow_passed``, ``shadow_failed`` (provider errors), ``shadow_cost_usd``,
``shadow_latency_ms`` (sums), and ``live_passed``, ``live_cost_usd``, ``live_latency_ms``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from pydantic import BaseModel

from contract.schemas import JobResult
from worker.keys import SHADOW_TTL_S, Keys
from worker.overlay import Shadow
from worker.steering import draw

log = logging.getLogger(__name__)

TASK_SHADOW = "tierline.shadow"


class LiveSide(BaseModel):
    """What the live answer was, for the comparison."""

    model: str
    passed: bool
    cost_usd: float
    latency_ms: float


def wanted(shadow: Shadow | None, result: JobResult) -> bool:
    """Whether `result`'s job is shadowed: a generation happened, on another model, and the
    job id falls in the share."""
    if shadow is None or result.model is None or result.model == shadow.model:
        return False
    return draw(result.job_id, "shadow") < shadow.share


def live_side(result: JobResult) -> LiveSide:
    return LiveSide(model=result.model or "", passed=result.ok and not result.escalations,
                    cost_usd=result.cost_usd, latency_ms=result.latency_ms)


@dataclass(frozen=True)
class ShadowOutcome:
    """The shadow call: its answer passed the checks, or the call failed; cost and latency."""

    passed: bool
    failed: bool
    cost_usd: float
    latency_ms: float


def record_shadow(client: redis.Redis, keys: Keys, model: str, live: LiveSide, shadow: ShadowOutcome) -> None:
    """Add one comparison to the shadow model's hash."""
    key = keys.shadow(model)
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(key, "jobs", 1)
    pipe.hincrby(key, "shadow_passed", int(shadow.passed))
    pipe.hincrby(key, "shadow_failed", int(shadow.failed))
    pipe.hincrbyfloat(key, "shadow_cost_usd", shadow.cost_usd)
    pipe.hincrbyfloat(key, "shadow_latency_ms", shadow.latency_ms)
    pipe.hincrby(key, "live_passed", int(live.passed))
    pipe.hincrbyfloat(key, "live_cost_usd", live.cost_usd)
    pipe.hincrbyfloat(key, "live_latency_ms", live.latency_ms)
    pipe.expire(key, SHADOW_TTL_S)
    pipe.execute()


def read_shadow(client: redis.Redis, keys: Keys, model: str) -> dict[str, float]:
    raw: dict[bytes, bytes] = client.hgetall(keys.shadow(model))  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in raw.items()}
