"""The first pass over a batch: count its lines, reject duplicate custom_ids up front.

Runs before anything is sent. Lines that are not JSON, or have no usable custom_id, are
left to the second pass, which reports them with the rest of the bad lines.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from contract.errors import InvalidJob
from producers.batch.errors import DuplicateCustomIds
from producers.batch.ledger import Ledger
from producers.batch.lines import custom_id_of, load
from producers.batch.source import LineSource

_REPORTED = 1000  # duplicates listed by line number; the rest are only counted


@dataclass(frozen=True)
class Census:
    """Non-blank lines in the batch, and how many of them `skip` says are done."""

    total: int
    skipped: int


def take_census(
    source: LineSource, *, skip: Container[str] = (), key: Callable[[dict[str, Any], int], str | None] = custom_id_of,
) -> Census:
    """Count `source`; raise `DuplicateCustomIds` (with line numbers) if any id repeats.

    key: a line's id (its custom_id by default; None or `InvalidJob`: left to the second pass).
    """
    duplicates: dict[str, list[int]] = {}
    count = total = skipped = 0
    with Ledger() as seen:
        for number, raw in source:
            total += 1
            try:
                custom_id = key(load(raw), number)
            except InvalidJob:
                continue
            if custom_id is None:
                continue
            first = seen.add(custom_id, number)
            if first is None:
                skipped += custom_id in skip
                continue
            count += 1
            if custom_id in duplicates:
                duplicates[custom_id].append(number)
            elif len(duplicates) < _REPORTED:
                duplicates[custom_id] = [first, number]
    if duplicates:
        raise DuplicateCustomIds(duplicates, count=count)
    return Census(total, skipped)
