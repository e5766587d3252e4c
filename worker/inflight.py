"""The jobs running in this process: a lease each in Redis, kept alive, and their journal.

A job takes its lease (``<prefix>lease:<job>:<level>``, a short TTL) when it starts; one
heartbeat per process renews the lease of every job still running and writes each one's
journal (``<prefix>journal:<job>``: the attempts made so far, the call in flight listed
as interrupted), in one pipelined round trip every `keys.LEASE_RENEW_S`. So:

- a redelivered message whose job still runs elsewhere (a broker connection that dropped,
  a visibility timeout that passed) finds the lease and waits for that job's result
  instead of calling a provider a second time;
- a job whose process died (killed, out of memory, the hard limit under prefork) leaves
  its journal behind, and the failed JobResult that ends it lists those attempts.

The lease is taken by the routing-state read a first delivery makes anyway
(`worker.state`), so a job shorter than one heartbeat costs no round trip of its own;
a job whose read did not take it (a redelivery that runs, a failed read) takes it with
one SET.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable

import redis
from pydantic import TypeAdapter

from contract.schemas import Attempt
from worker import keys
from worker.record import JobRecord
from worker.state import Lease

log = logging.getLogger(__name__)

ATTEMPTS = TypeAdapter(list[Attempt])


class Inflight:
    """Leases and journals of this process's running jobs, renewed by one heartbeat."""

    def __init__(
        self, client: redis.Redis, names: keys.Keys, attempts_of: Callable[[JobRecord], list[Attempt]],
        *, renew_s: float = keys.LEASE_RENEW_S, lease_ttl_s: int = keys.LEASE_TTL_S,
    ) -> None:
        """attempts_of: a running job's attempts so far, its call in flight included."""
        self._redis = client
        self._keys = names
        self._attempts_of = attempts_of
        self._renew_s = renew_s
        self._lease_ttl_s = lease_ttl_s
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self.lease = Lease(self._owner, lease_ttl_s)
        self._lock = threading.Lock()
        self._running: dict[int, JobRecord] = {}
        self._heartbeat: threading.Thread | None = None

    def begin(self, record: JobRecord, *, leased: bool = False) -> None:
        """Take the job's lease (unless `leased`: the routing-state read took it) and keep it
        while the job runs (until `end`)."""
        with self._lock:
            self._running[id(record)] = record
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="tierline-lease", daemon=True)
                self._heartbeat.start()
        if leased:
            return
        try:
            self._redis.set(self._keys.lease(record.job_id, record.carry.level), self._owner, ex=self._lease_ttl_s)
        except redis.RedisError as exc:
            log.warning("lease not taken job=%s: %s", record.job_id, exc)

    def end(self, record: JobRecord) -> None:
        """The job is over here: stop renewing its lease (it lapses within its TTL)."""
        with self._lock:
            self._running.pop(id(record), None)

    def held(self, job_id: str, level: int) -> bool:
        """Whether a live worker holds the job's lease (a Redis error counts as not held)."""
        try:
            return bool(self._redis.exists(self._keys.lease(job_id, level)))
        except redis.RedisError:
            return False

    def journal(self, job_id: str) -> list[Attempt]:
        """The attempts an earlier delivery of the job recorded before it stopped renewing."""
        try:
            raw = self._redis.get(self._keys.journal(job_id))
        except redis.RedisError:
            return []
        try:
            return ATTEMPTS.validate_json(raw) if raw else []
        except ValueError:
            return []

    def renew(self) -> None:
        """Renew every running job's lease and write its journal: one round trip."""
        with self._lock:
            running = list(self._running.values())
        if not running:
            return
        pipe = self._redis.pipeline(transaction=False)
        for record in running:
            pipe.set(self._keys.lease(record.job_id, record.carry.level), self._owner, ex=self._lease_ttl_s)
            pipe.set(self._keys.journal(record.job_id), _dump(self._attempts_of(record)), ex=keys.JOURNAL_TTL_S)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("leases not renewed (%d jobs): %s", len(running), exc)

    def _beat(self) -> None:
        stop = threading.Event()
        while not stop.wait(self._renew_s):
            try:
                self.renew()
            except Exception:  # the heartbeat must outlive any one bad beat
                log.exception("lease heartbeat failed; beating on")


def _dump(attempts: list[Attempt]) -> bytes:
    return json.dumps([a.model_dump(mode="json") for a in attempts]).encode()


