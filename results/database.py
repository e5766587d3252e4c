"""Results on Celery's database backend (SQLAlchemy; PostgreSQL in production).

Celery keeps one row per task in its ``celery_taskmeta`` table (task_id, status, result
encoded with the result serializer, JSON here; date_done). A poll is one
``SELECT … WHERE task_id IN (…)``; a release is one ``UPDATE`` that drops the result and
sets the row's status to ``COLLECTED`` (the marker: a row of a few dozen bytes); the
purge deletes every row whose ``date_done`` is older than the result expiry, which the
database does not do on its own (the worker runs it, `worker/retention.py`).

The producer and the worker read through their own pooled engine, one per process:
Celery's session manager opens a new connection per call outside a worker's pool.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from celery import states
from celery.backends.database import DatabaseBackend
from sqlalchemy import Engine, Table, create_engine, delete, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from results.base import Stored, poll_until, retrying

# The status of a row whose result a producer collected and released (not a Celery state).
COLLECTED = "COLLECTED"

_TRANSIENT = (OperationalError, InterfaceError)


@lru_cache(maxsize=8)
def _engine(url: str, pid: int) -> Engine:
    # One pool per process (the pid keys it: a pool never crosses a fork).
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=8, pool_recycle=3600)


class DatabaseResults:
    """A `ResultStore` on Celery's database result backend."""

    expires_itself = False

    def __init__(self, backend: DatabaseBackend) -> None:
        self._backend = backend
        self._table: Table = backend.task_cls.__table__
        self._url = str(backend.url)
        if not backend.session_manager.prepared:
            # Celery creates its tables on a session's first query: a producer may read first.
            retrying("table check", _TRANSIENT, lambda: backend.ResultSession().close())

    @property
    def _db(self) -> Engine:
        return _engine(self._url, os.getpid())

    def read(self, job_ids: Sequence[str]) -> dict[str, Stored]:
        if not job_ids:
            return {}
        t = self._table
        query = select(t.c.task_id, t.c.status, t.c.result).where(
            t.c.task_id.in_(list(job_ids)), t.c.status.in_(sorted(states.READY_STATES)))
        rows = retrying("read", _TRANSIENT, lambda: self._rows(query))
        return {row[0]: self._stored(row[1], row[2]) for row in rows}

    def _rows(self, query: Any) -> list[Any]:
        with self._db.connect() as connection:
            return list(connection.execute(query))

    def _stored(self, status: str, payload: bytes | None) -> Stored:
        # The serializer's decode only (JSON): never Celery's pickle fallback for old rows.
        value = None if payload is None else self._backend.decode(bytes(payload))
        meta = self._backend.meta_from_decoded({"status": status, "result": value})
        return Stored(status, meta["result"])

    def release(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        t = self._table
        statement = update(t).where(t.c.task_id.in_(list(job_ids))).values(
            status=COLLECTED, result=None, traceback=None, date_done=datetime.now(UTC))
        retrying("release", _TRANSIENT, lambda: self._execute(statement))

    def _execute(self, statement: Any) -> int:
        with self._db.begin() as connection:
            return int(connection.execute(statement).rowcount)

    def collected(self, job_id: str) -> bool:
        t = self._table
        query = select(t.c.task_id).where(t.c.task_id == job_id, t.c.status == COLLECTED)
        return bool(retrying("marker read", _TRANSIENT, lambda: self._rows(query)))

    def wait(self, job_id: str, timeout_s: float | None) -> Stored:
        return poll_until(lambda: self.read([job_id]).get(job_id), job_id, timeout_s)

    def purge_expired(self) -> int:
        expires = self._backend.expires
        if not isinstance(expires, timedelta):
            return 0
        statement = delete(self._table).where(self._table.c.date_done < datetime.now(UTC) - expires)
        return retrying("purge", _TRANSIENT, lambda: self._execute(statement))
