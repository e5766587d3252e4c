"""`submit_batch`: many lines through the workers, a bounded window at a time.

`submit_batch` checks the whole batch first (duplicate custom_ids are rejected before
anything is sent) and returns a `BatchHandle`; iterating `handle.results()` sends the
lines, keeps at most `window` jobs in flight, and yields one `LineOutcome` per line in
the order they finish. `handle.progress` counts as it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery

from contract.names import QUEUE_CONVERSATIONS
from producers.batch.census import take_census
from producers.batch.identity import job_id, scope_of
from producers.batch.lines import BadLine, RawLine, parse_line
from producers.batch.queued import queued_job_ids
from producers.batch.records import LineOutcome
from producers.batch.source import LineSource
from producers.batch.window import Ticket, Window
from producers.client import producer_app, producer_app_for
from results import store_for

DEFAULT_WINDOW = 256
_POLL_MIN_S = 0.005
_POLL_MAX_S = 0.1


@dataclass
class BatchProgress:
    """Counts of one run; `skipped` lines were done before it started."""

    total: int
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    invalid: int = 0
    in_flight: int = 0
    cost_usd: float = 0.0
    # Chunks the finished documents were cut into, and tokens in and out (extraction).
    chunks: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        """Lines this run finished: succeeded, failed by the worker, or bad."""
        return self.succeeded + self.failed + self.invalid

    @property
    def done(self) -> int:
        return self.skipped + self.finished

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Lines finished per second in this run."""
        return self.finished / max(self.elapsed_s, 1e-9)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None before the first line finishes."""
        return (self.total - self.done) / self.rate if self.finished else None

    def count(self, outcome: LineOutcome) -> None:
        if outcome.result is None:
            self.invalid += 1
        elif outcome.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if outcome.result is not None:
            self.cost_usd += outcome.result.cost_usd
            self.chunks += outcome.result.chunks or 1
            self.tokens += outcome.result.tokens_in + outcome.result.tokens_out


class BatchHandle(AbstractContextManager["BatchHandle"]):
    """A checked batch; `results()` runs it (once) and yields each item's outcome.

    feed: the items to run, in order: a `Ticket` to send, or a `LineOutcome` for an item
    that needs no job (bad, or done before). queue: where its jobs go (the jobs already
    waiting there are only waited for). admit: send at most this many tickets at a time
    (default: a window's room), so big jobs (documents) are not all held at once.
    on_close: releases the feed's resources.
    """

    def __init__(
        self, feed: Iterator[Ticket | LineOutcome], *, queue: str, window: int, app: Celery,
        progress: BatchProgress, admit: int | None = None, on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self.progress = progress
        self._feed = feed
        self._on_close = on_close
        self._admit = admit or window
        self._store = store_for(app.backend)
        queued = queued_job_ids(app, queue)
        self._window = Window(capacity=window, sender=sender_app(app), store=self._store, queued=queued)
        self._started = False

    def results(self, *, stop: Callable[[], bool] = lambda: False) -> Iterator[LineOutcome]:
        """Send the lines and yield their outcomes as they finish (not in file order).

        Stopping early (break, Ctrl-C) leaves the jobs in flight running on the workers;
        a later run of the same batch collects their results without sending them again.
        stop: asked between two steps (a poll, an item read); once it says True the run
        raises KeyboardInterrupt there, as Ctrl-C would, but never inside a call to the
        broker or the result backend (`producers.batch.interrupt`).
        """
        if self._started:
            raise RuntimeError("a batch runs once; submit it again to resume it")
        self._started = True
        try:
            yield from self._run(self._feed, stop)
        finally:
            self.close()

    def _run(self, feed: Iterator[Ticket | LineOutcome], stop: Callable[[], bool]) -> Iterator[LineOutcome]:
        delay, more = _POLL_MIN_S, True
        while more or len(self._window):
            if stop():
                raise KeyboardInterrupt
            outcomes: list[LineOutcome] = []
            if more and self._window.room:
                more = self._fill(feed, outcomes, stop)
            # Lines that took no room (done before, bad) leave room to fill at once.
            filling = more and self._window.room > 0
            outcomes += self._window.collect()
            self.progress.in_flight = len(self._window)
            for outcome in outcomes:
                self.progress.count(outcome)
                yield outcome
            delay = max(_POLL_MIN_S, delay / 2) if outcomes else min(_POLL_MAX_S, delay * 2)
            if not filling:
                time.sleep(delay)

    def _fill(
        self, feed: Iterator[Ticket | LineOutcome], outcomes: list[LineOutcome], stop: Callable[[], bool]
    ) -> bool:
        """Take lines from `feed` until the window is full; False once `feed` is empty.

        Once `stop` says so it sends nothing more: the tickets taken are sent by the next run.
        """
        tickets: list[Ticket] = []
        for item in feed:
            if isinstance(item, LineOutcome):
                outcomes.append(item)
            else:
                tickets.append(item)
            if len(tickets) >= min(self._window.room, self._admit) or len(outcomes) >= self._window.capacity:
                outcomes += self._window.admit(tickets)
                return True
            if stop():
                return True
        outcomes += self._window.admit(tickets)
        return False

    def release(self, job_ids: Sequence[str]) -> None:
        """Free the stored results of `job_ids` once they are safely written elsewhere."""
        self._store.release(job_ids)

    def close(self) -> None:
        self._on_close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def sender_app(app: Celery) -> Celery:
    """An app that sends to `app`'s broker with no result backend.

    Celery's Redis backend subscribes a producer to a pub/sub channel for every task it
    sends with a backend configured, which does not scale to a batch: the batch reads
    its results in bulk through its `ResultStore` instead.
    """
    return producer_app_for(str(app.conf.broker_url), "")


def submit_batch(
    lines: Iterable[RawLine] | Path,
    *,
    route: bool = False,
    window: int = DEFAULT_WINDOW,
    scope: str | None = None,
    skip: Container[str] = frozenset(),
    app: Celery | None = None,
) -> BatchHandle:
    """Check a batch and return its handle; raise `DuplicateCustomIds` before sending anything.

    lines: a JSONL file, or lines as JSON strings or dicts (OpenAI Batch API, Mistral
    batch or plain lines, see `producers.batch.lines`). route: let tierline route lines
    whose body names a ``model`` instead of pinning it. window: most jobs in flight at
    once. scope: the batch identity job ids derive from (default: the file's resolved
    path, or "" for lines given from Python); the same scope and lines give the same job
    ids, so submitting again resumes. skip: custom_ids already done, left out. app: the
    producer app (default: from the environment).
    """
    app = app or producer_app()  # no Redis URL: fail before reading a million lines
    source = LineSource(lines)
    try:
        census = take_census(source, skip=skip)
    except BaseException:
        source.close()
        raise
    if scope is None:
        scope = scope_of(lines) if isinstance(lines, Path) else ""
    return BatchHandle(
        _line_tickets(source, scope=scope, route=route, skip=skip), queue=QUEUE_CONVERSATIONS,
        window=window, app=app, progress=BatchProgress(total=census.total, skipped=census.skipped),
        on_close=source.close,
    )


def _line_tickets(
    source: LineSource, *, scope: str, route: bool, skip: Container[str]
) -> Iterator[Ticket | LineOutcome]:
    for number, raw in source:
        line = parse_line(raw, number, route=route, skip=skip)
        if line is None:
            continue
        if isinstance(line, BadLine):
            yield LineOutcome(line=number, custom_id=line.custom_id, invalid=line.error)
            continue
        job = {**line.job, "metadata": {"custom_id": line.custom_id, **line.job.get("metadata", {})}}
        yield Ticket(number, line.custom_id, job_id(scope, line.custom_id, job), job)
