"""Results on Celery's Redis backend: one MGET per poll, one pipeline per release.

Celery's own keys (``celery-task-meta-<id>``) hold the results, with the backend's own
key naming and decoding. A released result is deleted and a ``tierline-collected-<id>``
marker (a few bytes, for the result expiry: a day by default) stays in its place. Redis expires both by their TTLs.
"""

from __future__ import annotations

import logging
import time
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
RECHECK_S = 2.0  # how often a wait reads the stored result itself (its notice may be lost)
AWAY_PAUSE_S = 0.5  # between a wait's reads while Redis does not answer

log = logging.getLogger(__name__)


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
        return {job_id: stored for job_id, raw in zip(job_ids, raws, strict=True)
                if (stored := self._ended(raw)) is not None}

    def _ended(self, raw: bytes | None) -> Stored | None:
        """A stored result's end; None for none, or one not ended."""
        if raw is None:
            return None
        meta = self._backend.decode_result(raw)
        return Stored(meta["status"], meta.get("result")) if meta.get("status") in states.READY_STATES else None

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
        # Celery's Redis backend waits on pub/sub, but its notice can be lost: a result stored
        # while the subscription was down (a Redis restart) is not sent again, and Celery's
        # result consumer, once a reconnect gave up, does not subscribe again to a task it
        # subscribed to before. So the wait listens in slices of RECHECK_S, each begun by
        # Celery reading the stored result (a GET); while Redis does not answer, it goes on
        # until its timeout.
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        result = AsyncResult(job_id, backend=self._backend, app=self._backend.app)
        away: BaseException | None = None
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    value = result.get(timeout=RECHECK_S if left is None else min(RECHECK_S, left),
                                       propagate=False, disable_sync_subtasks=False)
                    return Stored(result.state, value)
                except CeleryTimeout:
                    away = None
                except (*_TRANSIENT, RuntimeError) as exc:
                    lost = _outage(exc)
                    if lost is None:
                        raise
                    # Under gevent Celery's listener, once its reconnect gave up, fails every
                    # later get() at once, before its read: read the result here instead.
                    found = self._read_once(job_id)
                    if found is not None:
                        return found
                    if away is None:
                        log.warning("waiting for job %s: the result backend does not answer (%s)",
                                    job_id, _named(lost))
                    away = lost
                    time.sleep(AWAY_PAUSE_S if left is None else min(AWAY_PAUSE_S, left))
                if deadline is not None and time.monotonic() >= deadline:
                    why = "" if away is None else f" (the result backend did not answer: {_named(away)})"
                    raise TimeoutError(f"job {job_id} not finished within {timeout_s}s{why}") from away
        finally:
            # Unsubscribe now, while Redis is up (the AsyncResult's own __del__ would do it
            # whenever the garbage collector gets to it, perhaps after Redis has gone); with
            # Redis away, the subscription went with its connection.
            try:
                self._backend.remove_pending_result(result)
            except (*_TRANSIENT, RuntimeError) as exc:
                if _outage(exc) is None:
                    raise
            result.backend = None

    def _read_once(self, job_id: str) -> Stored | None:
        """The job's stored end, read once; None when there is none or Redis does not answer."""
        try:
            return self._ended(self._client.get(self._backend.get_key_for_task(job_id)))
        except _TRANSIENT:
            return None

    def purge_expired(self) -> int:
        return 0  # every result and marker carries its own TTL


def gave_up_on(exc: BaseException) -> BaseException | None:
    """The connection error Celery's result consumer gave up on, when `exc` is the
    RuntimeError it raises then ("Retry limit exceeded ..."); None for anything else."""
    cause = exc.__cause__
    return cause if isinstance(exc, RuntimeError) and isinstance(cause, _TRANSIENT) else None


def _outage(exc: BaseException) -> BaseException | None:
    """The connection error behind `exc` when Redis did not answer (directly, or as what
    Celery's result consumer gave up on); None otherwise. A refused password is a
    ConnectionError too, but no outage: it is not waited on."""
    cause = gave_up_on(exc) or exc
    if isinstance(cause, _TRANSIENT) and not isinstance(cause, redis.AuthenticationError):
        return cause
    return None


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
