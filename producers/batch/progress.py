"""The batch progress bar: done/total, failed, rate, ETA and cost so far."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from producers.batch.handle import BatchProgress

_REFRESH_S = 0.1


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class BatchBar:
    """A rich progress bar fed from `BatchProgress`; updates at most every 0.1 s.

    live: False shows nothing (the bar is disabled). unit: what the batch counts ("lines",
    "documents"); documents also show the chunks and tokens of those finished.
    """

    def __init__(
        self, console: Console, progress: BatchProgress, *, live: bool = True, unit: str = "lines"
    ) -> None:
        self._source = progress
        extra = [TextColumn("{task.fields[chunks]} chunks"), TextColumn("{task.fields[tokens]} tokens")]
        self._bar = Progress(
            TextColumn("batch" if unit == "lines" else unit), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[flying]} in flight"),
            *(extra if unit != "lines" else []),
            TextColumn(f"{{task.fields[rate]}} {unit}/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[green]${task.fields[cost]}"),
            console=console, disable=not live,
        )
        self._task: TaskID = self._bar.add_task("batch", total=progress.total, **self._fields())
        self._updated = 0.0

    def _fields(self) -> dict[str, Any]:
        p = self._source
        return {
            "failed": f"{p.failed + p.invalid:,}", "flying": f"{p.in_flight:,}",
            "rate": f"{p.rate:,.1f}", "eta": _duration(p.eta_s), "cost": f"{p.cost_usd:,.4f}",
            "chunks": f"{p.chunks:,}", "tokens": f"{p.tokens:,}",
        }

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._updated >= _REFRESH_S:
            self._bar.update(self._task, completed=self._source.done, **self._fields())
            self._updated = now

    def __enter__(self) -> BatchBar:
        self._bar.start()
        self.update(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.update(force=True)
        self._bar.stop()
