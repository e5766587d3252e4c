"""A batch run into files: items through the workers into OUT.jsonl, resumable.

Running the same command again after an interruption (Ctrl-C, a crash, a lost
connection) skips what OUT already holds and sends the rest again under the same job
ids: jobs the workers finished meanwhile are collected from their stored results, and
no finished job is sent to a provider twice. `FileRun` is the part every kind of batch
shares (chat lines: `FileBatch`; documents: `producers.documents.DocumentRun`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from celery import Celery

from producers.batch.files import LINES, OutputFiles, RecordFormat, errors_path_for
from producers.batch.handle import DEFAULT_WINDOW, BatchHandle, BatchProgress, submit_batch
from producers.batch.records import LineOutcome

_RELEASE_EVERY = 128
log = logging.getLogger(__name__)


def _release_after_interruption(handle: BatchHandle, written: list[str]) -> None:
    """Release `written` on the way out of an interrupted run; the interruption still wins.

    Ctrl-C can land inside a result-backend call and leave its connection unusable (a
    database connection still "in a query"); a release that fails then only leaves those
    results to expire by themselves, and must not turn exit 130 into a traceback.
    """
    try:
        handle.release(written)
    except Exception as exc:  # best effort: the results expire anyway, the run says so
        log.warning("could not release %d written results after the interruption (%s); they expire by themselves",
                    len(written), type(exc).__name__)


class FileRun:
    """Open with `with`: the resume scan and the checks happen on entry.

    output: OUT; errors: its errors file (default ``<out>.errors.jsonl``). form: the
    records' shape. inputs: the paths the run reads (none may be OUT or the errors file).
    """

    def __init__(self, output: Path, *, errors: Path | None, form: RecordFormat, inputs: tuple[Path, ...]) -> None:
        errors = errors or errors_path_for(output)
        if len({output.resolve(), errors.resolve(), *(p.resolve() for p in inputs)}) < 2 + len(inputs):
            raise ValueError("the input, output and errors files must be different files")
        self.output, self.errors, self._form = output, errors, form
        self._files: OutputFiles | None = None
        self._handle: BatchHandle | None = None

    def _open_handle(self, skip: Container[str]) -> BatchHandle:
        """The run's handle, leaving out the keys in `skip` (what OUT already holds)."""
        raise NotImplementedError

    @property
    def progress(self) -> BatchProgress:
        return self._opened()[1].progress

    @property
    def resumed(self) -> int:
        """Records found in OUT and the errors file when this run started."""
        return self._opened()[0].resumed

    def run(self, *, stop: Callable[[], bool] = lambda: False) -> Iterator[LineOutcome]:
        """Run what is not done yet; each outcome is written before it is yielded.

        Once written records are flushed to OUT, their stored results are released (see
        `ResultStore.release`), so the result backend holds about a window's worth of them;
        an interrupted run (Ctrl-C, a break) releases what it wrote before it stops.
        stop: as for `BatchHandle.results` (the run stops between two steps once it says True).
        """
        files, handle = self._opened()
        written: list[str] = []
        try:
            for outcome in handle.results(stop=stop):
                files.write(outcome)
                if outcome.result is not None:
                    written += self._form.released(outcome)
                if len(written) >= _RELEASE_EVERY:
                    files.flush()
                    handle.release(written)
                    written = []
                yield outcome
        except BaseException:  # interrupted (Ctrl-C, a break): release what OUT holds, if we can
            files.flush()
            _release_after_interruption(handle, written)
            raise
        files.flush()
        handle.release(written)

    def _opened(self) -> tuple[OutputFiles, BatchHandle]:
        if self._files is None or self._handle is None:
            raise RuntimeError(f"open the run first: `with {type(self).__name__}(...) as run:`")
        return self._files, self._handle

    def __enter__(self) -> Self:
        self._files = OutputFiles(self.output, self.errors, form=self._form)
        try:
            self._handle = self._open_handle(self._files.done)
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


class FileBatch(FileRun):
    """A batch file of chat lines: IN.jsonl into OUT.jsonl; a line is done when its
    custom_id is in OUT. route, window, app: as for `submit_batch`."""

    def __init__(
        self, source: Path, output: Path, *, errors: Path | None = None, route: bool = False,
        window: int = DEFAULT_WINDOW, app: Celery | None = None,
    ) -> None:
        super().__init__(output, errors=errors, form=LINES, inputs=(source,))
        self.source = source
        self._route, self._window, self._app = route, window, app

    def _open_handle(self, skip: Container[str]) -> BatchHandle:
        return submit_batch(self.source, route=self._route, window=self._window, skip=skip, app=self._app)


def run_file(
    source: Path, output: Path, *, errors: Path | None = None, route: bool = False,
    window: int = DEFAULT_WINDOW, app: Celery | None = None,
) -> BatchProgress:
    """Run `source` into `output` to the end (see `FileBatch`); the run's counts."""
    with FileBatch(source, output, errors=errors, route=route, window=window, app=app) as batch:
        for _ in batch.run():
            pass
        return batch.progress
