"""Routing state in Redis: busy flags and delivery counters.

A busy flag means "this model recently failed here", never "the provider is down".
The flags of every model and the job's delivery counter are read in ONE round trip,
which also takes the job's lease on its first delivery (so a job that runs pays no
separate write for it); a flag is set with a script that extends it and never shortens
it. If Redis cannot be read, routing fails open (nothing is busy) and counts
``state:busy_read_failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from worker import keys as keyspace
from worker import series
from worker.metrics import Metrics
from worker.redis_pool import run_script

log = logging.getLogger(__name__)

# PTTL is -2 for a missing key and -1 for a key without TTL: both are shorter than any ttl.
# One command for a delivery's whole read: count it (KEYS[1], expiring after ARGV[1]
# seconds); on the first delivery, when ARGV[2] names an owner, take the job's lease
# (KEYS[2], for ARGV[3] seconds): a first delivery always runs its job. Then every busy
# flag and what else is read along (KEYS[3..]). One request, one reply to parse.
_READ = """
local delivery = redis.call('INCR', KEYS[1])
local leased = 0
if delivery == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  if ARGV[2] ~= '' then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
    leased = 1
  end
end
return {delivery, leased, redis.call('MGET', unpack(KEYS, 3))}
"""

# Returns the milliseconds of busy time the call added (0: already flagged for longer).
_EXTEND = """
local current = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', wanted)
  if current < 0 then current = 0 end
  return wanted - current
end
return 0
"""


@dataclass(frozen=True)
class Snapshot:
    """What one round trip learned: busy models, this delivery's number (0 = unknown), and
    whether it took the job's lease."""

    busy: frozenset[str]
    delivery: int
    healthy: bool
    leased: bool = False


@dataclass(frozen=True)
class Lease:
    """Who holds a running job's lease (`worker.inflight`), and for how long without renewal."""

    owner: str
    ttl_s: int


@dataclass(frozen=True)
class BusyFlag:
    reason: str
    ttl_s: float


class ReadAlong(Protocol):
    """Something else read in a delivery's one round trip (live control: overlay version,
    circuits, spend): the keys to add, and their values (None: the read failed)."""

    def read_keys(self) -> list[str]: ...

    def observe(self, values: Sequence[bytes | None] | None) -> None: ...


class RoutingState:
    """Busy flags and delivery counters on the routing-state Redis."""

    def __init__(
        self, client: redis.Redis, keys: keyspace.Keys, metrics: Metrics, *, along: ReadAlong | None = None
    ) -> None:
        self._redis = client
        self._keys = keys
        self._metrics = metrics
        self._along = along
        self._extend = client.register_script(_EXTEND)
        self._read = client.register_script(_READ)

    def read(self, models: Sequence[str], *, job_id: str, level: int = 0, lease: Lease | None = None) -> Snapshot:
        """Count this delivery of `job_id` at escalation `level` and read the flags of `models`;
        with `lease`, a first delivery also takes the job's lease (`Snapshot.leased`)."""
        along = self._along.read_keys() if self._along is not None else []
        keys = [self._keys.deliveries(job_id, level), self._keys.lease(job_id, level),
                *(self._keys.busy(m) for m in models), *along]
        args: list[str | int] = [keyspace.DELIVERIES_TTL_S, *((lease.owner, lease.ttl_s) if lease else ("", 0))]
        try:
            delivery, leased, values = run_script(self._redis, self._read, keys, args)
        except redis.RedisError as exc:
            self._unreadable(exc)
            if self._along is not None:
                self._along.observe(None)
            return Snapshot(frozenset(), 0, healthy=False)
        if self._along is not None:
            self._along.observe(values[len(models):])
        return Snapshot(_flagged(models, values[:len(models)]), int(delivery), healthy=True, leased=bool(leased))

    def busy(self, models: Sequence[str]) -> frozenset[str]:
        """The flagged models among `models` (one MGET), for a plan later in a job's life."""
        try:
            flags = self._redis.mget([self._keys.busy(m) for m in models])
        except redis.RedisError as exc:
            self._unreadable(exc)
            return frozenset()
        return _flagged(models, flags)  # type: ignore[arg-type]

    def _unreadable(self, exc: redis.RedisError) -> None:
        self._metrics.incr("state:busy_read_failed")
        self._metrics.count(series.STATE_ERRORS, ("read",))
        log.warning("routing state unreadable, routing as if nothing were busy: %s", exc)

    def mark_busy(self, model: str, *, ttl_s: float, reason: str) -> None:
        """Flag `model` busy for `ttl_s` seconds unless it is already flagged for longer."""
        try:
            added_ms = self._extend(keys=[self._keys.busy(model)], args=[max(1, int(ttl_s * 1000)), reason])
        except redis.RedisError as exc:
            self._metrics.incr("state:busy_write_failed")
            self._metrics.count(series.STATE_ERRORS, ("write",))
            log.warning("could not flag model=%s busy: %s", model, exc)
            return
        self._metrics.count(series.BUSY_MARKS, (model, reason.split(":", 1)[0]))
        if added_ms:
            self._metrics.count(series.BUSY_SECONDS, (model,), int(added_ms) / 1000)

    def flags(self, models: Sequence[str]) -> dict[str, BusyFlag]:
        """Current flags with their reason and time left, for operators."""
        pipe = self._redis.pipeline(transaction=False)
        for model in models:
            pipe.get(self._keys.busy(model))
            pipe.pttl(self._keys.busy(model))
        replies = pipe.execute()
        out: dict[str, BusyFlag] = {}
        for i, model in enumerate(models):
            value, pttl = replies[2 * i], replies[2 * i + 1]
            if value is not None and pttl > 0:
                out[model] = BusyFlag(value.decode(), pttl / 1000)
        return out


def _flagged(models: Sequence[str], flags: Sequence[bytes | None]) -> frozenset[str]:
    return frozenset(m for m, flag in zip(models, flags, strict=True) if flag is not None)
