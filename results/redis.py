"""Results on Celery's Redis backend: one MGET per poll, one pipeline per release.

Celery's own keys (``celery-task-meta-<id>``) hold the results, with the backend's own
key naming and decoding. A released result is deleted and a ``tierline-collected-<id>``
marker (a few bytes, for the result expiry: a day by default) stays in its place. Redis expires both by their TTLs.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from contract.keys import COLLECTED_TTL_S
from contract.keys import collected as collected_key
from results.base import Stored, retrying

_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


class RedisResults:
    """A `ResultStore` on Celery's Redis result backend."""

    expires_itself = True

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._client = backend.client
        # A marker lives as long as the result it replaces would have.
        self._collected_ttl_s = int(backend.expires or COLLECTED_TTL_S)

    def read(self, job_ids: Sequence[str]) -> dict[str, Stored]:
        if not job_ids:
            return {}
        keys = [self._backend.get_key_for_task(job_id) for job_id in job_ids]
        raws = retrying("read", _TRANSIENT, lambda: list(self._client.mget(keys)))
        found: dict[str, Stored] = {}
        for job_id, raw in zip(job_ids, raws, strict=True):
            if raw is None:
                continue
            meta = self._backend.decode_result(raw)
            if meta.get("status") in states.READY_STATES:
                found[job_id] = Stored(meta["status"], meta.get("result"))
        return found

    def release(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(collected_key(job_id), b"1", ex=self._collected_ttl_s)
            pipe.delete(self._backend.get_key_for_task(job_id))
        retrying("release", _TRANSIENT, pipe.execute)

    def collected(self, job_id: str) -> bool:
        return bool(retrying("marker read", _TRANSIENT, lambda: self._client.exists(collected_key(job_id))))

    def wait(self, job_id: str, timeout_s: float | None) -> Stored:
        # Celery's Redis backend waits on pub/sub: no polling for a single handle.
        result = AsyncResult(job_id, backend=self._backend, app=self._backend.app)
        try:
            value = result.get(timeout=timeout_s, propagate=False, disable_sync_subtasks=False)
            state = result.state
        except CeleryTimeout:
            state = ""
        finally:
            # Unsubscribe now, while Redis is up; the AsyncResult's own __del__ would do it
            # whenever the garbage collector gets to it, perhaps after Redis has gone.
            self._backend.remove_pending_result(result)
            result.backend = None
        if not state:
            raise TimeoutError(f"job {job_id} not finished within {timeout_s}s")
        return Stored(state, value)

    def purge_expired(self) -> int:
        return 0  # every result and marker carries its own TTL
