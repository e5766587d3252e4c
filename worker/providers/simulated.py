"""The simulated provider: a real implementation of the provider protocol, offline.

Per-model latency and error rate, scripted outages (model X fails from t1 to t2 with a
given error), deterministic answers, poor answers on demand (short, refusal, broken
JSON), or as often as a pass-rate curve by length and category says (`sim_quality`, the
rule `tierline replay` predicts with), and token usage. Its script is JSON, read from Redis (``<prefix>sim:script``) at
most every ``refresh_s`` seconds, so a demo or a test can change it while workers run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field

from worker import errors
from worker.providers.base import ChatRequest, ChatResponse
from worker.providers.sim_quality import PassCurve, draw
from worker.tokens import TokenCounter

log = logging.getLogger(__name__)

ErrorName = Literal[
    "unavailable", "server_error", "rate_limited", "timeout", "auth", "unknown_model",
    "bad_request", "malformed",
]
PoorName = Literal["short", "refusal", "broken_json", "schema_mismatch"]


class Outage(BaseModel):
    """Model fails with `error` from `start` to `end` (Unix time, seconds)."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    error: ErrorName = "unavailable"
    retry_after_s: float | None = None


class Behaviour(BaseModel):
    """How one simulated model behaves; rates are fractions of requests."""

    model_config = ConfigDict(frozen=True)

    latency_ms: float = Field(default=0.0, ge=0)
    # Added per thousand tokens of the request, as a real model takes longer to read a
    # long prompt.
    latency_ms_per_ktok: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error: ErrorName = "unavailable"
    retry_after_s: float | None = None
    poor_rate: float = Field(default=0.0, ge=0, le=1)
    poor: PoorName = "refusal"
    outages: tuple[Outage, ...] = ()
    # Set: answers are poor when the job's draw (seed, job id, model) is above the curve's
    # pass rate for the conversation's length and ``metadata.category`` (poor_rate unused).
    quality: PassCurve | None = None
    # False: a call slower than its timeout blocks for its whole latency, like a hung
    # connection whose client ignores the timeout (only the soft time limit stops it).
    honours_timeout: bool = True
    # True: a call slower than its timeout is stuck in native code for its whole latency:
    # no signal, greenlet switch or exception from outside reaches it, so the soft time
    # limit cannot stop it (under prefork only the hard limit, which kills the process).
    blocks_process: bool = False


class Script(BaseModel):
    """Behaviour per model name, and the default for the others."""

    model_config = ConfigDict(frozen=True)

    default: Behaviour = Behaviour()
    models: dict[str, Behaviour] = Field(default_factory=dict)
    seed: int = 0
    # "exact": usage counts the conversation with the worker's tokenizer (a replay's cost
    # then matches its trace); "estimate": 4 characters a token, no encoding.
    usage: Literal["estimate", "exact"] = "estimate"
    # "budget": a good answer, and a refusal, is exactly max_output_tokens tokens long (a
    # replay sets the budget to the trace's answer length); "text": a short sentence.
    answer_length: Literal["text", "budget"] = "text"

    def behaviour(self, model: str) -> Behaviour:
        return self.models.get(model, self.default)


class RedisScript:
    """A script read from Redis, cached for `refresh_s` seconds; `fallback` when absent."""

    def __init__(
        self, client: redis.Redis, key: str, *, refresh_s: float, fallback: Script | None = None
    ) -> None:
        self._redis = client
        self._key = key
        self._refresh_s = refresh_s
        self._fallback = fallback or Script()
        self._cached: tuple[float, Script] | None = None

    def current(self) -> Script:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self._refresh_s:
            return self._cached[1]
        script = self._fallback
        try:
            raw = self._redis.get(self._key)
            if raw is not None:
                script = Script.model_validate_json(raw)
        except redis.RedisError as exc:
            log.warning("simulation script unreadable, keeping the last one: %s", exc)
            script = self._cached[1] if self._cached else self._fallback
        self._cached = (now, script)
        return script


def publish_script(client: redis.Redis, key: str, script: Script, *, ttl_s: int) -> None:
    """Store `script` where every simulated provider reading `key` will see it."""
    client.set(key, script.model_dump_json(), ex=ttl_s)


WAIT_SLICE_S = 0.05


class SimulatedProvider:
    """Behaves like a real provider, without a network."""

    name = "simulated"

    def __init__(
        self,
        script: Callable[[], Script],
        counter: TokenCounter,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._script = script
        self._counter = counter
        self._clock = clock
        self._sleep = sleep

    def _wait(self, seconds: float) -> None:
        # In slices, as a connection that trickles bytes returns to Python now and then:
        # an exception set on this thread from outside (the threads pool's soft limit)
        # lands between two slices instead of after the whole wait.
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._sleep(min(left, WAIT_SLICE_S))

    def chat(self, request: ChatRequest, *, timeout_s: float) -> ChatResponse:
        script = self._script()
        behaviour = script.behaviour(request.model)
        rng = random.Random(_seed(request))
        tokens_in = self._usage_in(script, request)
        latency_ms = behaviour.latency_ms + behaviour.latency_ms_per_ktok * tokens_in / 1000
        latency_s = (latency_ms + rng.uniform(0, behaviour.jitter_ms)) / 1000
        failure = self._failure(behaviour, rng)
        if failure is not None and failure[0] == "timeout":
            latency_s = timeout_s + 1
        if latency_s > timeout_s and behaviour.honours_timeout:
            self._sleep(timeout_s)
            raise errors.ProviderTimeout(
                f"no answer within {timeout_s:.1f}s", provider=self.name, model=request.model
            )
        if latency_s > timeout_s and behaviour.blocks_process:
            _block(latency_s)
        elif latency_s > timeout_s:
            self._wait(latency_s)  # a call that ignores its timeout
        elif latency_s > 0:
            self._sleep(latency_s)
        if failure is not None:
            raise simulated_error(failure[0], failure[1], request.model)
        poor = self._poor(script, behaviour, request, rng, tokens_in)
        content = self._content(script, request, poor, rng)
        tokens_out = self._counter.text(content)
        if tokens_out > request.max_output_tokens:
            return ChatResponse(content, tokens_in, request.max_output_tokens, "length")
        return ChatResponse(content, tokens_in, tokens_out, "stop")

    def _content(self, script: Script, request: ChatRequest, poor: str | None, rng: random.Random) -> str:
        """The answer's text. With ``answer_length = "budget"`` a good answer, and a refusal
        too, is as long as the output budget: a replay's calculator charges a rejected
        generation at the trace's answer length, and a refusal of a dozen tokens made every
        escalated job cheaper through the workers than predicted (~2% of a replay's cost).
        The refusal's phrase comes first, where the quality check looks for it."""
        if script.answer_length != "budget" or request.json_mode or poor not in (None, "refusal"):
            return _answer(request, poor, rng)
        if poor is None:
            return _budget_answer(request)
        # The phrase, a space, then digits: one token each, on top of the phrase's own.
        room = request.max_output_tokens - self._refusal_tokens - 1
        return f"{_REFUSAL} {_digits(room)}" if room > 0 else _REFUSAL

    @functools.cached_property
    def _refusal_tokens(self) -> int:
        return self._counter.text(_REFUSAL)

    def _usage_in(self, script: Script, request: ChatRequest) -> int:
        """Prompt tokens as a provider would bill them: exact, or an estimate (4 characters a
        token) that keeps the simulator from encoding every conversation a second time."""
        if script.usage == "exact":
            return self._counter.conversation([m["content"] for m in request.messages]).tokens
        return sum(len(m["content"]) // 4 + 4 for m in request.messages)

    def _poor(
        self, script: Script, behaviour: Behaviour, request: ChatRequest, rng: random.Random, tokens: int
    ) -> str | None:
        if behaviour.quality is None:
            return behaviour.poor if rng.random() < behaviour.poor_rate else None
        category = request.metadata.get("category")
        rate = behaviour.quality.pass_rate(tokens, None if category is None else str(category))
        passes = rate >= 1.0 or draw(script.seed, request.job_id, request.model) < rate
        return None if passes else behaviour.poor

    def _failure(self, behaviour: Behaviour, rng: random.Random) -> tuple[str, float | None] | None:
        now = self._clock()
        for outage in behaviour.outages:
            if outage.start <= now < outage.end:
                return outage.error, outage.retry_after_s
        if behaviour.error_rate and rng.random() < behaviour.error_rate:
            return behaviour.error, behaviour.retry_after_s
        return None


def _block(seconds: float) -> None:
    """Hold the whole process for `seconds`, as a call stuck in a C extension does: Celery's
    soft-limit signal stays pending, gevent's hub never runs, a thread's async exception waits."""
    sleep = time.sleep
    if "gevent" in sys.modules:
        from gevent import monkey

        sleep = monkey.get_original("time", "sleep")
    masked = threading.current_thread() is threading.main_thread()
    if masked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        sleep(seconds)
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


def _seed(request: ChatRequest) -> int:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(request.model.encode())
    for message in request.messages:
        digest.update(message["role"].encode())
        digest.update(message["content"].encode())
    return int.from_bytes(digest.digest(), "big")


_ERRORS: dict[str, type[errors.ProviderError]] = {
    "unavailable": errors.ProviderUnavailable,
    "timeout": errors.ProviderTimeout,
    "server_error": errors.ProviderUnavailable,
    "malformed": errors.MalformedResponse,
    "auth": errors.AuthenticationFailed,
    "unknown_model": errors.UnknownModel,
    "bad_request": errors.InvalidRequest,
}


def simulated_error(name: str, retry_after_s: float | None, model: str) -> errors.ProviderError:
    """The provider error a simulated failure `name` raises (a 429 carries `retry_after_s`)."""
    message = f"simulated {name.replace('_', ' ')}"
    if name == "rate_limited":
        return errors.RateLimited(
            message, provider="simulated", model=model, retry_after_s=retry_after_s
        )
    return _ERRORS[name](message, provider="simulated", model=model)


_REFUSAL = "I'm sorry, but I can't help with that request."


def _answer(request: ChatRequest, poor: str | None, rng: random.Random) -> str:
    if poor == "short":
        return "OK."
    if poor == "refusal":
        return _REFUSAL
    if request.json_mode or request.json_schema is not None:
        if poor == "broken_json":
            return '{"answer": "unterminated'
        value = (
            {"unexpected": True}
            if poor == "schema_mismatch"
            else _instance(request.json_schema or {"type": "object"}, _words(request))
        )
        return json.dumps(value)
    if poor == "broken_json":
        return "{not json"
    # Deterministic, and it never echoes the conversation (results are shown in Flower).
    return (
        f"Answer from {request.model} (simulated) to a {len(request.messages)}-message conversation: "
        f"here is a considered reply, reference {rng.randrange(10**6):06d}."
    )


def _budget_answer(request: ChatRequest) -> str:
    """An answer of exactly max_output_tokens tokens (every digit is one token)."""
    return _digits(max(4, request.max_output_tokens))


def _digits(count: int) -> str:
    return ("0123456789" * (count // 10 + 1))[:count]


def _words(request: ChatRequest) -> list[str]:
    words = [w.strip(".,;:!?\"'()") for w in request.messages[-1]["content"].split()]
    return [w for w in words if w] or ["value"]


def _instance(schema: dict[str, Any], words: list[str], depth: int = 0) -> Any:
    """A deterministic instance of a JSON Schema, filled from `words`."""
    kind = schema.get("type", "object")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _instance(v, words[i:] or words, depth + 1) for i, (k, v) in enumerate(props.items())}
    if kind == "array":
        item = schema.get("items", {"type": "string"})
        return [_instance(item, words[i:] or words, depth + 1) for i in range(min(2, len(words)))]
    if kind in ("integer", "number"):
        return len(words[0])
    if kind == "boolean":
        return len(words) % 2 == 0
    return words[0]
