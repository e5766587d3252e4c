"""Where a chunk's extracted values stand in the document (pure functions).

A value found verbatim in its chunk (a string, or a number as written; case and spacing
aside) is located at its own characters; any other value (an object, a value the model
rephrased) is located at the whole chunk, with ``exact`` false. Offsets are character
offsets in the whole document, end exclusive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.merge import Sources


@dataclass(frozen=True)
class Span:
    """A chunk of the document: its index and where it starts and ends (characters)."""

    index: int
    start: int
    end: int


def sources_of(value: Mapping[str, Any], text: str, span: Span) -> Sources:
    """The sources of each top-level property of `value`, the answer for chunk `span`.

    text: the chunk's text. An array property gets one list of sources per item; any
    other property one list.
    """
    out: Sources = {}
    for name, found in value.items():
        if isinstance(found, list):
            out[name] = [[_locate(item, text, span)] for item in found]
        elif found not in (None, "", {}):
            out[name] = [_locate(found, text, span)]
        else:
            out[name] = []
    return out


def _locate(value: Any, text: str, span: Span) -> dict[str, Any]:
    needle = _needle(value)
    if needle:
        match = re.search(r"\s+".join(re.escape(w) for w in needle.split()), text, re.IGNORECASE)
        if match is not None:
            return _source(span.index, span.start + match.start(), span.start + match.end(), exact=True)
    return _source(span.index, span.start, span.end, exact=False)


def _needle(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text if text and len(text) <= 1000 else None
    return None


def _source(chunk: int, start: int, end: int, *, exact: bool) -> dict[str, Any]:
    return {"chunk": chunk, "start": start, "end": end, "exact": exact}
