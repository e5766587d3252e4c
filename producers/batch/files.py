"""The output and errors files of a batch: appended to, and read back to resume.

Every line that reaches a result is appended to OUT (one line per input line); failed and
bad lines are also appended to the errors file, before OUT, so that a line found in OUT
is never missing from the errors file. On a new run, a torn last line (a crash mid-write)
is cut off, the custom_ids in OUT are the lines already done, and error records already
written are not written twice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from producers.batch.errors import CorruptOutput
from producers.batch.ledger import Ledger
from producers.batch.records import LineOutcome, error_record, output_record

_FLUSH_EVERY_S = 0.25
_CHUNK = 1 << 16


def errors_path_for(output: Path) -> Path:
    """The default errors file next to `output`: ``out.jsonl`` → ``out.errors.jsonl``."""
    return output.with_name(f"{output.stem}.errors{output.suffix or '.jsonl'}")


@dataclass(frozen=True)
class RecordFormat:
    """How one kind of batch writes its records and finds them again to resume.

    output / error: OUT's record and the errors file's record of an outcome. done_key: the
    key of an OUT record (what a new run skips); error_key: an error record's key (each
    written once). released: the stored results an outcome's record makes free to delete.
    """

    output: Callable[[LineOutcome], dict[str, Any]]
    error: Callable[[LineOutcome], dict[str, Any]]
    done_key: Callable[[dict[str, Any]], str | None]
    error_key: Callable[[dict[str, Any]], str]
    released: Callable[[LineOutcome], list[str]]


def _custom_id(record: dict[str, Any]) -> str | None:
    value = record.get("custom_id")
    return value if isinstance(value, str) else None


def _error_key(record: dict[str, Any]) -> str:
    return f"{record.get('id')}@{record.get('line')}"


def _own_job(outcome: LineOutcome) -> list[str]:
    return [outcome.job_id] if outcome.job_id is not None else []


# Chat lines in the OpenAI batch output shape; a line is done when its custom_id is in OUT.
LINES = RecordFormat(output_record, error_record, _custom_id, _error_key, _own_job)


class OutputFiles(AbstractContextManager["OutputFiles"]):
    """OUT and its errors file, opened for appending after a resume scan."""

    def __init__(self, output: Path, errors: Path, *, form: RecordFormat = LINES) -> None:
        self.output, self.errors = output, errors
        self.form = form
        self.done = Ledger()
        self._reported = Ledger()
        try:
            self.resumed = _scan(output, self.done, form.done_key) + _scan(errors, self._reported, form.error_key)
        except BaseException:
            self._close_ledgers()
            raise
        self._files: dict[Path, IO[bytes]] = {}
        self._flushed = time.monotonic()

    def write(self, outcome: LineOutcome) -> None:
        """Append `outcome`'s lines: errors first (if it failed), then OUT (if it ran)."""
        if not outcome.ok:
            record = self.form.error(outcome)
            if self._reported.add(self.form.error_key(record)) is None:
                errors = self._file(self.errors)
                errors.write(_encode(record))
                errors.flush()  # on disk before OUT can be: see the module docstring
        if outcome.result is not None:
            self._file(self.output).write(_encode(self.form.output(outcome)))
        if time.monotonic() - self._flushed > _FLUSH_EVERY_S:
            self.flush()

    def _file(self, path: Path) -> IO[bytes]:
        # Opened on first use: a batch rejected up front, or without errors, creates nothing.
        if path not in self._files:
            self._files[path] = open(path, "ab")
        return self._files[path]

    def flush(self) -> None:
        for file in self._files.values():
            file.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        for file in self._files.values():
            file.flush()
            os.fsync(file.fileno())
            file.close()
        self._files.clear()
        self._close_ledgers()

    def _close_ledgers(self) -> None:
        self.done.close()
        self._reported.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _scan(path: Path, ledger: Ledger, key_of: Callable[[dict[str, Any]], str | None]) -> int:
    """Add the key of every record in `path` to `ledger`; the number of records."""
    if not path.exists():
        return 0
    cut_torn_tail(path)
    records = 0
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise CorruptOutput(path, number, f"not JSON ({exc})") from exc
            key = key_of(record) if isinstance(record, dict) else None
            if key is None:
                raise CorruptOutput(path, number, "not a record of this kind of batch")
            ledger.add(key, number)
            records += 1
    return records


def cut_torn_tail(path: Path) -> int:
    """Cut whatever follows the last newline of `path` (a line torn by a crash); bytes cut."""
    with open(path, "r+b") as file:
        end = file.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - _CHUNK)
            file.seek(start)
            newline = file.read(position - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        file.truncate(keep)
    return end - keep
