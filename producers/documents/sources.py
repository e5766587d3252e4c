"""Where documents come from: a folder (walked in name order) or a JSONL of ``id`` and ``text``.

Each document is read only when the run is ready to send it, so a folder of any size
costs the producer about one document at a time. A document's id is its path relative
to the folder (``contracts/2024/a.pdf``), or the ``id`` of its JSONL line.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from contract.errors import InvalidJob
from contract.schemas import ErrorInfo
from producers.batch.census import take_census
from producers.batch.lines import RawLine, load
from producers.batch.source import LineSource
from producers.documents.errors import DocumentError, Unreadable
from producers.documents.reading import checked, read_text

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One document: its number in the source (1-based), its id, and its text or why not."""

    number: int
    id: str
    text: str | None = None
    error: ErrorInfo | None = None


class DocumentSource(AbstractContextManager["DocumentSource"]):
    """The documents of `path` (a folder, or a ``.jsonl`` file), read lazily.

    exclude: files never taken as documents (the run's own output and errors files).
    max_bytes: the largest document (file and text).
    """

    def __init__(self, path: Path, *, exclude: Collection[Path] = (), max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.folder = path.is_dir()
        self._exclude = {p.resolve() for p in exclude}
        self._max_bytes = max_bytes
        self._lines = None if self.folder else LineSource(path)

    def count(self) -> int:
        """How many documents; a JSONL whose ids repeat raises `DuplicateCustomIds` (with lines)."""
        if self._lines is None:
            return sum(1 for _ in self._files())
        return take_census(self._lines, key=_census_id).total

    def __iter__(self) -> Iterator[Document]:
        if self._lines is None:
            for number, file in enumerate(self._files(), start=1):
                yield self._file_document(number, file)
            return
        for number, raw in self._lines:
            yield self._line_document(number, raw)

    def _files(self) -> Iterator[Path]:
        for root, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                file = Path(root, name)
                if not name.startswith(".") and file.resolve() not in self._exclude:
                    yield file

    def _file_document(self, number: int, file: Path) -> Document:
        doc_id = file.relative_to(self.path).as_posix()
        try:
            return Document(number, doc_id, text=read_text(file, max_bytes=self._max_bytes))
        except Unreadable as exc:
            return Document(number, doc_id, error=ErrorInfo(code=exc.code, message=str(exc)))

    def _line_document(self, number: int, raw: RawLine) -> Document:
        doc_id: str | None = None
        try:
            obj = load(raw)
            doc_id = _line_id(obj, number)
            text = obj.get("text")
            if not isinstance(text, str):
                raise Unreadable(DocumentError.INVALID_DOCUMENT, "a line needs a string `text`")
            return Document(number, doc_id, text=checked(text, max_bytes=self._max_bytes))
        except InvalidJob as exc:
            return Document(number, doc_id or f"line-{number}", error=ErrorInfo(
                code=DocumentError.INVALID_JSON, message=str(exc)))
        except Unreadable as exc:
            return Document(number, doc_id or f"line-{number}", error=ErrorInfo(code=exc.code, message=str(exc)))

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line_id(obj: object, number: int) -> str:
    value = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise Unreadable(DocumentError.INVALID_DOCUMENT, f"line {number}: a line needs an `id` (a string)")
    return value


def _census_id(obj: dict[str, object], number: int) -> str | None:
    try:
        return _line_id(obj, number)
    except Unreadable:
        return None
