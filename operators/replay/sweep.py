"""A threshold sweep: `small=2000:6000:500` replayed step by step, the cheapest setting
whose first-pass rate meets the bar named."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from operators.replay.scenario import Scenario
from operators.replay.workload import WorkloadError

_SPEC = re.compile(r"^\s*([\w.-]+)\s*=\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+))?\s*$")
MAX_STEPS = 200


@dataclass(frozen=True)
class Sweep:
    """Tier `tier`'s threshold from `start` to `stop` (inclusive) by `step` tokens."""

    tier: str
    start: int
    stop: int
    step: int

    @property
    def values(self) -> list[int]:
        return list(range(self.start, self.stop + 1, self.step))


def parse_sweep(text: str) -> Sweep:
    """`TIER=START:STOP[:STEP]` (tokens; STEP defaults to 500)."""
    match = _SPEC.match(text)
    if not match:
        raise WorkloadError(f"sweep {text!r}: expected TIER=START:STOP[:STEP], e.g. small=2000:6000:500")
    tier, start, stop, step = match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4) or 500)
    if start <= 0 or stop < start or step <= 0:
        raise WorkloadError(f"sweep {text!r}: need 0 < START <= STOP and STEP > 0")
    sweep = Sweep(tier, start, stop, step)
    if len(sweep.values) > MAX_STEPS:
        raise WorkloadError(f"sweep {text!r}: {len(sweep.values)} steps, at most {MAX_STEPS}")
    return sweep


def run_sweep(
    sweep: Sweep, scenario: Scenario, replay: Callable[[Scenario], dict[str, Any]]
) -> list[tuple[int, dict[str, Any]]]:
    """Each step's summary, replayed by `replay` under `scenario` with the threshold set."""
    return [(value, replay(scenario.with_threshold(sweep.tier, value))) for value in sweep.values]


def cheapest(steps: Sequence[tuple[int, dict[str, Any]]], *, bar: float) -> int | None:
    """The threshold of the cheapest step whose first-pass rate is at least `bar`."""
    meeting = [(s["cost_usd"], value) for value, s in steps if s["first_pass_rate"] >= bar]
    return min(meeting)[1] if meeting else None
