"""A disk-backed set of keys with the line each was first seen on (SQLite, stdlib).

The producer's memory must not grow with the file: a million custom_ids held in a Python
set cost about 100 MB, here they cost a temporary file and SQLite's small page cache.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import AbstractContextManager

_COMMIT_EVERY = 10_000


class Ledger(AbstractContextManager["Ledger"]):
    """Keys seen so far, in an anonymous temporary database (gone when closed or killed)."""

    def __init__(self) -> None:
        handle, path = tempfile.mkstemp(prefix="tierline-ledger-", suffix=".sqlite")
        os.close(handle)
        self._db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4000"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        # Only this connection uses the file: unlinked now, a killed producer leaves nothing.
        os.unlink(path)
        self._db.execute("BEGIN")
        self._pending = 0
        self.count = 0

    def add(self, key: str, line: int = 0) -> int | None:
        """Record `key` first seen on `line`; if it was already there, its first line."""
        cursor = self._db.execute(
            "INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", (key, line)
        )
        if cursor.rowcount == 0:
            return self.first_line(key)
        self.count += 1
        self._pending += 1
        if self._pending >= _COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0
        return None

    def first_line(self, key: str) -> int | None:
        row = self._db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.first_line(key) is not None

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        self._db.close()

    def __exit__(self, *exc: object) -> None:
        self.close()
