"""Backpressure: at most `capacity` batch jobs sent and not yet collected.

A million-line file never puts more than `capacity` of its jobs on the broker at once,
and the producer holds only their line numbers and custom_ids. Before a job is sent its
result is looked up: a job that a previous run sent and the worker finished is collected
without sending it again, and one whose message still waits on the broker is only
waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery

from contract.names import TASK_COMPLETE
from contract.schemas import JobResult
from producers.batch.records import LineOutcome
from producers.client import send_job
from results import ResultStore, fetch


@dataclass(frozen=True)
class Ticket:
    """An item ready to send: its number, custom_id (or document id), job id, job payload and task."""

    line: int
    custom_id: str
    job_id: str
    job: dict[str, Any]
    task: str = TASK_COMPLETE


class Window:
    """The jobs in flight, sent through `sender`, collected from `store`."""

    def __init__(
        self, *, capacity: int, sender: Celery, store: ResultStore, queued: frozenset[str] = frozenset()
    ) -> None:
        """queued: job ids whose messages already wait on the broker (an earlier run's)."""
        if capacity < 1:
            raise ValueError(f"the window holds at least one job, got {capacity}")
        self.capacity = capacity
        self._sender = sender
        self._store = store
        self._queued = queued
        self._flying: dict[str, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._flying)

    @property
    def room(self) -> int:
        return self.capacity - len(self._flying)

    def admit(self, tickets: Sequence[Ticket]) -> list[LineOutcome]:
        """Send `tickets` (at most `room`); those already finished come back instead."""
        done = fetch(self._store, [t.job_id for t in tickets])
        outcomes = []
        for ticket in tickets:
            if ticket.job_id in done:
                outcomes.append(_outcome(ticket.job_id, (ticket.line, ticket.custom_id), done))
                continue
            if ticket.job_id not in self._queued:
                send_job({**ticket.job, "job_id": ticket.job_id}, app=self._sender, task=ticket.task)
            self._flying[ticket.job_id] = (ticket.line, ticket.custom_id)
        return outcomes

    def collect(self) -> list[LineOutcome]:
        """The jobs in flight that finished since the last call."""
        done = fetch(self._store, list(self._flying))
        return [_outcome(job_id, self._flying.pop(job_id), done) for job_id in done]


def _outcome(job_id: str, where: tuple[int, str], done: dict[str, JobResult]) -> LineOutcome:
    return LineOutcome(line=where[0], custom_id=where[1], job_id=job_id, result=done[job_id])
