"""Result backends behind one small interface (`ResultStore`): Redis and SQL databases.

Both sides read results through it: the client (handles, batch runs, resume, release)
and the worker (redelivery, the `duplicate` check, retention). It imports only the
contract, so the client stays free of the worker and the worker of the client.

    store = store_for(app.backend)
    store.read(job_ids)      # finished jobs, one round trip (MGET / SELECT … IN)
    store.release(job_ids)   # free written-out results, leave `collected` markers
    store.collected(job_id)  # the marker, for a late duplicate
    store.wait(job_id, 60)   # one handle's result
    store.purge_expired()    # retention where the backend has no TTLs

The database implementation is imported only for a database backend, so a client
without the ``postgres`` extra (SQLAlchemy and a driver) never needs it.
"""

from __future__ import annotations

import sys

from celery.backends.base import Backend
from celery.backends.redis import RedisBackend

from contract.keys import COLLECTED_TTL_S
from results.base import (
    ResultStore,
    ResultsUnavailable,
    Stored,
    as_completed,
    fetch,
    to_job_result,
)

__all__ = [
    "COLLECTED_TTL_S", "ResultStore", "ResultsUnavailable", "Stored", "UnsupportedBackend", "as_completed", "fetch",
    "store_for", "to_job_result",
]


class UnsupportedBackend(ValueError):
    """A result backend tierline cannot read in bulk (only Redis and SQL databases)."""


def store_for(backend: Backend) -> ResultStore:
    """The results interface for a Celery app's result backend (``app.backend``)."""
    if isinstance(backend, RedisBackend):
        from results.redis import RedisResults

        return RedisResults(backend)
    database = sys.modules.get("celery.backends.database")  # loaded if the backend is one
    if database is not None and isinstance(backend, database.DatabaseBackend):
        from results.database import DatabaseResults

        return DatabaseResults(backend)
    raise UnsupportedBackend(
        f"tierline reads results from Redis (redis://, rediss://) or a database (db+postgresql://), "
        f"not from {type(backend).__name__}"
    )
