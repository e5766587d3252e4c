"""What a provider's rate-limit headers say is left, read from any response (200s too).

OpenAI and the servers that copy its API send ``x-ratelimit-remaining-requests`` and
``x-ratelimit-remaining-tokens`` with ``x-ratelimit-reset-requests`` /
``x-ratelimit-reset-tokens`` (durations such as ``1s``, ``6m0s``, ``20ms``); Mistral sends
the same two ``remaining`` headers, and its token budget also as
``x-ratelimitbysize-remaining-minute``. The router hands what they say to the shared rate
limit of the model (`worker.ratelimit.RateLimiter.tighten`), which then admits no more
than the provider has left until the reset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RESET_S = 60.0  # the providers' limits are per minute
MAX_RESET_S = 3600.0
_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # no sign, no exponent, no nan or inf
_DURATION = re.compile(rf"({_NUMBER.pattern})(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Remaining:
    """Calls and tokens the provider has left for this key (None: not said), each with the
    seconds until it refills."""

    requests: int | None
    tokens: int | None
    requests_reset_s: float = DEFAULT_RESET_S
    tokens_reset_s: float = DEFAULT_RESET_S


def remaining(headers: Mapping[str, str]) -> Remaining | None:
    """What `headers` (case-insensitive, as httpx's are) say is left; None when nothing."""
    requests = _count(headers.get("x-ratelimit-remaining-requests"))
    tokens = _count(headers.get("x-ratelimit-remaining-tokens"))
    tokens_reset = _reset(headers.get("x-ratelimit-reset-tokens"))
    if tokens is None:
        tokens = _count(headers.get("x-ratelimitbysize-remaining-minute"))
        tokens_reset = _reset(headers.get("ratelimitbysize-reset"))
    if requests is None and tokens is None:
        return None
    return Remaining(requests, tokens, _reset(headers.get("x-ratelimit-reset-requests")), tokens_reset)


def _reset(raw: str | None) -> float:
    seconds = _duration(raw)
    return DEFAULT_RESET_S if seconds is None else min(max(seconds, 0.001), MAX_RESET_S)


def _count(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _duration(raw: str | None) -> float | None:
    """Seconds in ``6m0s`` / ``20ms`` / ``1.5s``, or a bare number of seconds."""
    if raw is None:
        return None
    text = raw.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)
