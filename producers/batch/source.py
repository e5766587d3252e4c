"""Where batch lines come from: a file read twice (checks, then jobs) without holding it.

A path is streamed on each pass. A list or tuple is iterated again. A one-shot iterator
is spooled to a temporary file as JSON lines first, so that it too can be read twice
without keeping it in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from producers.batch.lines import RawLine


class LineSource(AbstractContextManager["LineSource"]):
    """Numbered, non-blank lines (1-based numbers, as an editor shows them)."""

    def __init__(self, lines: Iterable[RawLine] | Path) -> None:
        self._spool: Path | None = None
        self._lines: Collection[RawLine] | None = None
        if isinstance(lines, Path):
            self.path: Path | None = lines
        elif isinstance(lines, Collection) and not isinstance(lines, (str, bytes, Mapping)):
            self.path, self._lines = None, lines
        else:
            self.path = self._spool = _spool(lines)

    def __iter__(self) -> Iterator[tuple[int, RawLine]]:
        if self.path is None:
            yield from _numbered(self._lines or ())
            return
        with open(self.path, "rb") as file:
            yield from _numbered(file)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)
            self._spool = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def _numbered(lines: Iterable[RawLine]) -> Iterator[tuple[int, RawLine]]:
    for number, raw in enumerate(lines, start=1):
        if not (isinstance(raw, (str, bytes)) and not raw.strip()):
            yield number, raw


def _spool(lines: Iterable[Any]) -> Path:
    handle, name = tempfile.mkstemp(prefix="tierline-batch-", suffix=".jsonl")
    with os.fdopen(handle, "wb") as file:
        for line in lines:
            file.write(_as_bytes(line).rstrip(b"\r\n") + b"\n")
    return Path(name)


def _as_bytes(line: Any) -> bytes:
    if isinstance(line, bytes):
        return line
    if isinstance(line, str):
        return line.encode()
    return json.dumps(line, ensure_ascii=False).encode()
