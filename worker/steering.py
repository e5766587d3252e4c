"""Live steering of a plan: canary weights and circuit demotion, as pure functions.

`plan` orders the candidates from the catalog and the busy flags (drained models are
left out there, as uncallable ones are); `steer` then applies what operators and the
health windows say:

- weights: inside a tier, the first place goes to a model drawn by weight (a 90/10
  canary), the others follow in catalog order;
- circuits: a model whose circuit is open, or half-open and not probed by this job, is
  moved after every healthy candidate (a last resort, better than a failure); a
  half-open model is probed, in its usual place, by `probe_share` of the jobs.

Draws come from the job's id (stable across redeliveries), never from a global RNG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby

from worker.circuit import Circuit
from worker.plan import Candidate, Plan


@dataclass(frozen=True)
class Steering:
    """weights: tier name → model → weight. circuits: model → its state (absent: closed)."""

    weights: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    circuits: Mapping[str, Circuit] = field(default_factory=dict)
    probe_share: float = 0.05


def draw(key: str, salt: str) -> float:
    """A uniform number in [0, 1) from `key` (a job id) and `salt` (what it decides)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def steer(chosen: Plan, steering: Steering, *, key: str) -> Plan:
    """`chosen` reordered by weights and circuits, for the job identified by `key`."""
    if not steering.weights and not steering.circuits:
        return chosen
    pick = draw(key, "weights")
    ordered: list[Candidate] = []
    for tier_name, group in groupby(chosen.candidates, key=lambda c: c.tier_name):
        ordered += weighted(list(group), steering.weights.get(tier_name, {}), pick)
    probing = draw(key, "probe") < steering.probe_share
    healthy = [c for c in ordered if not _demoted(c, steering, probing)]
    demoted = [c for c in ordered if _demoted(c, steering, probing)]
    return Plan((*healthy, *demoted), all_busy=chosen.all_busy)


def weighted(group: list[Candidate], weights: Mapping[str, int], pick: float) -> list[Candidate]:
    """`group` (one tier's candidates) with the model drawn by `pick` (0–1) first."""
    present = [(c, weights.get(c.model.name, 0)) for c in group]
    total = sum(w for _, w in present)
    if total <= 0:
        return group
    point, seen = pick * total, 0
    for candidate, weight in present:
        seen += weight
        if weight and point < seen:
            return [candidate, *(c for c in group if c is not candidate)]
    return group


def _demoted(candidate: Candidate, steering: Steering, probing: bool) -> bool:
    state = steering.circuits.get(candidate.model.name, Circuit.CLOSED)
    return state is Circuit.OPEN or (state is Circuit.HALF_OPEN and not probing)
