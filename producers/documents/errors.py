"""Why a document never became a job: the codes of the errors file, one per document."""

from __future__ import annotations

from enum import StrEnum


class DocumentError(StrEnum):
    UNREADABLE = "unreadable"      # the file cannot be opened or read, or the PDF cannot be parsed
    EMPTY = "empty"                # no text at all (an empty file, a PDF without a text layer)
    BINARY = "binary"              # NUL bytes: not a text file (and not a PDF)
    UNDECODABLE = "undecodable"    # not valid UTF-8 (nor UTF-16 with a byte-order mark)
    TOO_LARGE = "too_large"        # bigger than the run's size limit
    UNSUPPORTED = "unsupported"    # a PDF without pypdf installed (`tierline[pdf]`)
    INVALID_JSON = "invalid_json"  # a JSONL line that is not a JSON object
    INVALID_DOCUMENT = "invalid_document"  # a JSONL line without a string `id` and a string `text`


class Unreadable(Exception):
    """A document that cannot be read; `code` says why."""

    def __init__(self, code: DocumentError, message: str) -> None:
        super().__init__(message)
        self.code = code
