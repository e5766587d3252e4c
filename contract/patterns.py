"""Job-supplied regular expressions run on RE2: linear time in the text, whatever the pattern.

A job's `must_match` / `must_not_match` patterns and the `pattern` / `patternProperties`
keywords of its JSON Schema come from whoever sent the job. Python's `re` backtracks, so
one pattern such as ``(a+)+$`` can hold a worker process for minutes on a short answer;
RE2 (``google-re2``) never backtracks. RE2 refuses what it cannot run in linear time
(back-references, look-around) and patterns whose compiled program is too big: such a
pattern fails the job when it is read, with ``invalid_pattern``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

# RE2's own limit on a compiled program (bytes); a bigger one is refused, not slowed down.
MAX_PROGRAM_BYTES = 8 << 20


class PatternRefused(ValueError):
    """RE2 cannot compile the pattern (bad syntax, back-reference, look-around, too big)."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


@lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """`pattern` compiled by RE2 (cached); `PatternRefused` says why RE2 will not run it."""
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternRefused(f"pattern {pattern[:80]!r} refused: {reason}") from None
    except (TypeError, ValueError) as exc:  # e.g. a lone surrogate cannot be encoded for RE2
        raise PatternRefused(f"pattern {pattern[:80]!r} refused: {exc}") from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` (already accepted by `compiled`) matches anywhere in `text`."""
    try:
        return compiled(pattern).search(text) is not None
    except UnicodeEncodeError:  # RE2 reads UTF-8: a lone surrogate in an answer is replaced
        return compiled(pattern).search(text.encode(errors="replace").decode()) is not None
