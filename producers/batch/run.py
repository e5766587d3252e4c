"""A batch file run: IN.jsonl through the workers into OUT.jsonl, resumable.

Running the same command again after an interruption (Ctrl-C, a crash, a lost
connection) skips the custom_ids already in OUT and sends the others again under the
same job ids: lines the workers finished meanwhile are collected from their stored
results, and no finished line is sent to a provider twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from celery import Celery

from producers.batch.files import OutputFiles, errors_path_for
from producers.batch.handle import DEFAULT_WINDOW, BatchHandle, BatchProgress, submit_batch
from producers.batch.records import LineOutcome

_RELEASE_EVERY = 128


class FileBatch:
    """Open with `with`: the resume scan and the duplicate check happen on entry.

    source: the input JSONL. output: OUT; errors: its errors file (default
    ``<out>.errors.jsonl``). route, window, app: as for `submit_batch`.
    """

    def __init__(
        self, source: Path, output: Path, *, errors: Path | None = None, route: bool = False,
        window: int = DEFAULT_WINDOW, app: Celery | None = None,
    ) -> None:
        errors = errors or errors_path_for(output)
        if len({source.resolve(), output.resolve(), errors.resolve()}) < 3:
            raise ValueError("the input, output and errors files must be three different files")
        self.source, self.output, self.errors = source, output, errors
        self._route, self._window, self._app = route, window, app
        self._files: OutputFiles | None = None
        self._handle: BatchHandle | None = None

    @property
    def progress(self) -> BatchProgress:
        return self._opened()[1].progress

    @property
    def resumed(self) -> int:
        """Records found in OUT and the errors file when this run started."""
        return self._opened()[0].resumed

    def run(self) -> Iterator[LineOutcome]:
        """Run the lines not done yet; each outcome is written before it is yielded.

        Once written lines are flushed to OUT, their stored results are released in Redis
        (see `ResultStore.release`), so Redis holds at most a window's worth of results.
        """
        files, handle = self._opened()
        written: list[str] = []
        for outcome in handle.results():
            files.write(outcome)
            if outcome.job_id is not None and outcome.result is not None:
                written.append(outcome.job_id)
            if len(written) >= _RELEASE_EVERY:
                files.flush()
                handle.release(written)
                written = []
            yield outcome
        files.flush()
        handle.release(written)

    def _opened(self) -> tuple[OutputFiles, BatchHandle]:
        if self._files is None or self._handle is None:
            raise RuntimeError("open the batch first: `with FileBatch(...) as batch:`")
        return self._files, self._handle

    def __enter__(self) -> FileBatch:
        self._files = OutputFiles(self.output, self.errors)
        try:
            self._handle = submit_batch(
                self.source, route=self._route, window=self._window, skip=self._files.done,
                app=self._app,
            )
        except BaseException:
            self._files.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._files is not None:
            self._files.close()


def run_file(
    source: Path, output: Path, *, errors: Path | None = None, route: bool = False,
    window: int = DEFAULT_WINDOW, app: Celery | None = None,
) -> BatchProgress:
    """Run `source` into `output` to the end (see `FileBatch`); the run's counts."""
    with FileBatch(source, output, errors=errors, route=route, window=window, app=app) as batch:
        for _ in batch.run():
            pass
        return batch.progress
