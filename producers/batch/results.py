"""Finished results read in bulk from the Celery Redis result backend: one MGET a poll.

No per-task subscription: Celery's Redis backend subscribes the producer to a pub/sub
channel for every task it sends with a backend configured, which does not scale to a
batch. Batches send through an app without a result backend and read results here,
with the backend's own key naming and decoding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis
from celery import Celery, states

from contract.keys import COLLECTED_TTL_S, collected
from contract.schemas import JobResult
from producers.client import producer_app_for, to_job_result

log = logging.getLogger(__name__)

# Reads are idempotent: ride out a short Redis hiccup (about 9 s) before giving up.
_RETRY_PAUSES_S = (0.1, 0.5, 1.0, 2.0, 5.0)


def sender_app(app: Celery) -> Celery:
    """An app that sends to `app`'s broker with no result backend (nothing to subscribe)."""
    return producer_app_for(str(app.conf.broker_url), "")


class ResultStore:
    """Reads JobResults of many job ids at once from `app`'s result backend."""

    def __init__(self, app: Celery) -> None:
        self._backend = app.backend
        self._client = app.backend.client

    def release(self, job_ids: Sequence[str], *, ttl_s: int = COLLECTED_TTL_S) -> None:
        """Delete the stored results of `job_ids` (written out by now), leaving a marker each.

        The marker tells a worker that meets a late duplicate of the job that its result
        was already delivered, so the duplicate is not run; it costs a few bytes where the
        result cost a kilobyte or more.
        """
        if not job_ids:
            return
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(collected(job_id), b"1", ex=ttl_s)
            pipe.delete(self._backend.get_key_for_task(job_id))
        pipe.execute()

    def fetch(self, job_ids: Sequence[str]) -> dict[str, JobResult]:
        """The results of the `job_ids` that are finished; the others are left out."""
        if not job_ids:
            return {}
        keys = [self._backend.get_key_for_task(job_id) for job_id in job_ids]
        found: dict[str, JobResult] = {}
        for job_id, raw in zip(job_ids, self._mget(keys), strict=True):
            if raw is None:
                continue
            meta = self._backend.decode_result(raw)
            if meta.get("status") in states.READY_STATES:
                found[job_id] = to_job_result(job_id, meta["status"], meta.get("result"))
        return found

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        for pause in _RETRY_PAUSES_S:
            try:
                return list(self._client.mget(keys))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("result backend unreadable, retrying in %ss: %s", pause, exc)
                time.sleep(pause)
        return list(self._client.mget(keys))
