"""The carry of a re-queued job is sealed: a hand-made message cannot set it.

A job re-queued to a stronger tier takes its earlier generations with it (`Carry`: the
routed token count, the tier floor, attempts, costs). The worker that re-queues it adds
an HMAC-SHA256 of the job id and the carry's canonical JSON under ``seal``; the worker
that receives it checks the seal before it believes a word, and refuses a carry without
a valid one (``forged_carry``).

The key is ``TIERLINE_CARRY_SECRET`` when set. Unset, the first worker generates 32
random bytes and keeps them in the routing-state Redis (`keys.Keys.carry_secret`, set
once, no TTL), where every worker sharing that Redis finds it. Workers that share a
broker but not a routing-state Redis must be given the same ``TIERLINE_CARRY_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import redis

SEAL = "seal"


def _mac(job_id: str, carry: dict[str, Any], secret: bytes) -> str:
    text = json.dumps(carry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(secret, f"{job_id}\n{text}".encode(), hashlib.sha256).hexdigest()


def sealed(job_id: str, carry: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """`carry` (its JSON form) with its seal for job `job_id`."""
    return {**carry, SEAL: _mac(job_id, carry, secret)}


def opened(job_id: str, raw: object, secret: bytes) -> dict[str, Any] | None:
    """The carry in `raw` without its seal when the seal is valid for `job_id`; None if not."""
    if not isinstance(raw, dict) or not isinstance(raw.get(SEAL), str):
        return None
    carry = {k: v for k, v in raw.items() if k != SEAL}
    try:
        expected = _mac(job_id, carry, secret)
    except (TypeError, ValueError):
        return None
    return carry if hmac.compare_digest(expected, raw[SEAL]) else None


def shared_secret(client: redis.Redis, key: str) -> bytes:
    """The workers' generated secret in Redis at `key`, created by the first to ask."""
    client.set(key, secrets.token_hex(32), nx=True)
    value = client.get(key)
    if not value:
        raise RuntimeError(f"carry secret {key} could not be read back")
    return bytes(value) if not isinstance(value, str) else value.encode()
