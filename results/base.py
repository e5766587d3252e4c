"""The results interface every path reads through, whatever the Celery result backend.

Handles, batch runs (sending, resume, collection, release), the worker's redelivery and
duplicate checks and the worker's retention all go through a `ResultStore`: one batched
read per poll, one batched release, the `collected` marker, and the purge of expired
results where the backend does not expire them itself. `results.store_for`
picks the implementation for an app's backend (Redis or a SQL database).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from celery import states

from contract.codes import ErrorCode
from contract.errors import JobFailed
from contract.schemas import ErrorInfo, JobResult

log = logging.getLogger(__name__)

T = TypeVar("T")

# Reads and releases are idempotent: ride out a short outage (about 9 s) before giving up.
RETRY_PAUSES_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class ResultsUnavailable(Exception):
    """The result backend did not answer through every retry (a lost Redis or database)."""


@dataclass(frozen=True)
class Stored:
    """A finished task's stored state (a Celery ready state) and its decoded value."""

    state: str
    value: object

    def job_result(self, job_id: str) -> JobResult:
        return to_job_result(job_id, self.state, self.value)

    def succeeded(self) -> JobResult | None:
        """The JobResult a task returned (Celery state SUCCESS: a succeeded job's, or a chunk's
        of several, failed or not); None for a FAILURE or a value that is not one."""
        if self.state != states.SUCCESS or not isinstance(self.value, dict):
            return None
        try:
            return JobResult.model_validate(self.value)
        except ValueError:
            return None

    def ended(self) -> JobResult | None:
        """The JobResult the job ended with: a task's return value (succeeded) or the one a
        `JobFailed` FAILURE carries (failed); None for a crash or a value that is not one."""
        if self.state == states.FAILURE:
            return failed_result(self.value)
        return self.succeeded()


class ResultStore(Protocol):
    """Results of many jobs at once, on one result backend."""

    def read(self, job_ids: Sequence[str]) -> dict[str, Stored]:
        """The finished jobs among `job_ids`, in one round trip; the others are left out."""
        ...

    def release(self, job_ids: Sequence[str]) -> None:
        """Free the stored results of `job_ids` (written out by now) and mark each collected.

        The marker tells a worker that meets a late duplicate of the job that its result
        was already delivered, so the duplicate is not run; it costs a few bytes where the
        result cost a kilobyte or more. One round trip.
        """
        ...

    def collected(self, job_id: str) -> bool:
        """Whether a producer collected and released this job's result."""
        ...

    def wait(self, job_id: str, timeout_s: float | None) -> Stored:
        """Block until the job finishes (None: forever); raise TimeoutError past `timeout_s`."""
        ...

    @property
    def expires_itself(self) -> bool:
        """True when the backend drops expired results on its own (Redis TTLs)."""
        ...

    def purge_expired(self) -> int:
        """Delete results (and markers) older than the result expiry; how many went."""
        ...


def fetch(store: ResultStore, job_ids: Sequence[str]) -> dict[str, JobResult]:
    """The JobResults of the finished jobs among `job_ids` (one round trip)."""
    return {job_id: stored.job_result(job_id) for job_id, stored in store.read(job_ids).items()}


def to_job_result(job_id: str, state: str, value: object) -> JobResult:
    """A JobResult from a Celery state and value: a succeeded job's, a failed job's (stored as a
    FAILURE carrying it, `JobFailed`); a crashed task becomes a failed result."""
    if state == states.SUCCESS and isinstance(value, dict):
        return JobResult.model_validate(value)
    if state == states.FAILURE and (failed := failed_result(value)) is not None:
        return failed
    return JobResult(
        job_id=job_id, status="failed",
        error=ErrorInfo(code=ErrorCode.WORKER_ERROR, message=f"task ended {state}: {value!r}"[:500]),
    )


def failed_result(value: object) -> JobResult | None:
    """The JobResult a stored `JobFailed` carries, or None.

    `value` is the exception the backend rebuilt (a `JobFailed`, or a stand-in class of
    the same name and arguments where `contract` was not loaded), or the raw JSON record
    ``{"exc_type": "JobFailed", "exc_message": [summary, result], ...}`` of a reader that
    decodes the backend's values itself.
    """
    if isinstance(value, dict):
        if value.get("exc_type") != JobFailed.__name__:
            return None
        args = value.get("exc_message")
    elif isinstance(value, BaseException) and type(value).__name__ == JobFailed.__name__:
        args = value.args
    else:
        return None
    if not isinstance(args, list | tuple) or len(args) != 2 or not isinstance(args[1], dict):
        return None
    try:
        return JobResult.model_validate(args[1])
    except ValueError:
        return None


def retrying(what: str, transient: tuple[type[BaseException], ...], call: Callable[[], T]) -> T:
    """`call()`, again after each pause of RETRY_PAUSES_S while it fails with a `transient` error."""
    for pause in RETRY_PAUSES_S:
        try:
            return call()
        except transient as exc:
            log.warning("result backend: %s failed, retrying in %ss: %s", what, pause, exc)
            time.sleep(pause)
    try:
        return call()
    except transient as exc:
        raise ResultsUnavailable(f"the result backend did not answer ({what}): {exc}") from exc


def poll_until(read_one: Callable[[], Stored | None], job_id: str, timeout_s: float | None) -> Stored:
    """Call `read_one` with a growing pause (5 ms up to 0.5 s) until it returns a result."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pause = 0.005
    while True:
        found = read_one()
        if found is not None:
            return found
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"job {job_id} not finished within {timeout_s}s")
        time.sleep(pause if left is None else min(pause, left))
        pause = min(0.5, pause * 2)


def as_completed(
    store: ResultStore, job_ids: Sequence[str], *, timeout_s: float, chunk: int = 1000
) -> Iterator[tuple[str, Stored]]:
    """Each job's stored result as it finishes: one read of (at most `chunk`) unfinished ids a poll.

    timeout_s: how long to wait for them all; TimeoutError past it.
    """
    pending = list(dict.fromkeys(job_ids))
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while pending:
        found = store.read(pending[:chunk])
        yield from found.items()
        if found:
            pending = [job_id for job_id in pending if job_id not in found]
            pause = 0.005
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} jobs not finished within {timeout_s}s")
        time.sleep(pause)
        pause = min(0.25, pause * 2)
