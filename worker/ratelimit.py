"""Shared rate limits per model: one atomic script call per attempt, across every worker.

Requests: a sliding-window log (a sorted set of admission times, ``<prefix>rl:req:<model>``),
so no window of `window_s` ever holds more than `rpm` admitted calls. Tokens: a sliding
window of twelve buckets (``<prefix>rl:tok:<model>``), counting the tokens reserved at
admission (the conversation's routed tokens plus its output budget). The time is Redis's
own (``TIME``), so workers on different machines share one clock. A provider that reports
how many requests or tokens remain (its rate-limit headers, `worker.providers.rate_headers`)
leaves ``<prefix>rl:cap:<model>`` / ``<prefix>rl:tcap:<model>``, which admissions spend
down until they expire at the provider's reset: a cap is only ever lowered.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import redis

from worker.keys import Keys
from worker.overlay import RateLimit
from worker.providers.rate_headers import Remaining
from worker.redis_pool import run_script

log = logging.getLogger(__name__)

# KEYS: requests zset, tokens hash, provider's call cap, provider's token cap.
# ARGV: window ms, rpm, tpm, tokens, member.
# Returns {1, 0} when admitted, else {0, milliseconds until a slot may free up}.
_ADMIT = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cap = tonumber(redis.call('GET', KEYS[3]) or '-1')
if cap == 0 then return {0, math.max(1, redis.call('PTTL', KEYS[3]))} end
local tcap = tonumber(redis.call('GET', KEYS[4]) or '-1')
if tcap >= 0 and tokens > tcap then return {0, math.max(1, redis.call('PTTL', KEYS[4]))} end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + window - now)}
  end
end
if tpm > 0 then
  local size = math.ceil(window / 12)
  local used, stale = 0, {}
  local buckets = redis.call('HGETALL', KEYS[2])
  for i = 1, #buckets, 2 do
    if (tonumber(buckets[i]) + 1) * size <= now - window then table.insert(stale, buckets[i])
    else used = used + tonumber(buckets[i + 1]) end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[2], unpack(stale)) end
  if used > 0 and used + tokens > tpm then return {0, size} end
  redis.call('HINCRBY', KEYS[2], math.floor(now / size), tokens)
  redis.call('PEXPIRE', KEYS[2], window + size)
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], window)
end
if cap > 0 then redis.call('DECR', KEYS[3]) end
if tcap >= 0 then redis.call('DECRBY', KEYS[4], tokens) end
return {1, 0}
"""


# KEYS: the provider's call cap, its token cap. ARGV: calls left ('' unknown), their TTL ms,
# tokens left ('' unknown), their TTL ms. A cap is set when absent or lowered, never raised.
_TIGHTEN = """
for i = 1, 2 do
  local left = ARGV[2 * i - 1]
  if left ~= '' then
    local cap = redis.call('GET', KEYS[i])
    if not cap or tonumber(left) < tonumber(cap) then
      redis.call('SET', KEYS[i], left, 'PX', ARGV[2 * i])
    end
  end
end
return 0
"""


@dataclass(frozen=True)
class Admission:
    """Whether a call may go out now; if not, how long until a slot may free up."""

    admitted: bool
    wait_s: float = 0.0


ADMITTED = Admission(True)


class RateLimiter:
    """Admits calls to models under their shared limits (`window_s`: the limits' window)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, window_s: float = 60.0) -> None:
        self._keys = keys
        self._redis = client
        self._window_ms = max(1, int(window_s * 1000))
        self._admit = client.register_script(_ADMIT)
        self._tighten = client.register_script(_TIGHTEN)

    def admit(self, model: str, limit: RateLimit, *, tokens: int) -> Admission:
        """One call of `model` reserving `tokens` tokens. Redis unreachable: admitted (fail open)."""
        keys = [self._keys.rate_requests(model), self._keys.rate_tokens(model), self._keys.rate_cap(model),
                self._keys.rate_token_cap(model)]
        args: list[int | str] = [self._window_ms, limit.rpm or 0, limit.tpm or 0, tokens, os.urandom(8).hex()]
        try:
            admitted, wait_ms = run_script(self._redis, self._admit, keys, args)
        except redis.RedisError as exc:
            log.warning("rate limit of model=%s unreadable, calling anyway: %s", model, exc)
            return ADMITTED
        return ADMITTED if admitted else Admission(False, int(wait_ms) / 1000)

    def tighten(self, model: str, left: Remaining) -> None:
        """The provider says only `left` remains until its resets: admit no more than that.
        A cap is only ever lowered (answers arrive out of order, and a provider's count
        misses the calls already admitted and on their way)."""
        args: list[int | str] = []
        for count, reset_s in ((left.requests, left.requests_reset_s), (left.tokens, left.tokens_reset_s)):
            args += ["" if count is None else count, max(1, int(reset_s * 1000))]
        try:
            self._tighten(keys=[self._keys.rate_cap(model), self._keys.rate_token_cap(model)], args=args)
        except redis.RedisError as exc:
            log.warning("could not record what the provider has left for model=%s: %s", model, exc)

    def usage(self, model: str) -> int:
        """Calls admitted in the current window, for operators."""
        secs, micros = self._redis.time()
        now_ms = int(secs) * 1000 + int(micros) // 1000
        return int(self._redis.zcount(self._keys.rate_requests(model), now_ms - self._window_ms, "+inf"))
