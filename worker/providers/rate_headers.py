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
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Remaining:
    """Calls and tokens the provider has left for this key (None: not said), and the
    seconds until they refill."""

    requests: int | None
    tokens: int | None
    reset_s: float


def remaining(headers: Mapping[str, str]) -> Remaining | None:
    """What `headers` (case-insensitive, as httpx's are) say is left; None when nothing."""
    requests = _count(headers.get("x-ratelimit-remaining-requests"))
    tokens = _count(headers.get("x-ratelimit-remaining-tokens"))
    if tokens is None:
        tokens = _count(headers.get("x-ratelimitbysize-remaining-minute"))
    if requests is None and tokens is None:
        return None
    resets = [_duration(headers.get(name)) for name in (
        "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "ratelimitbysize-reset")]
    known = [r for r in resets if r is not None]
    reset_s = max(known) if known else DEFAULT_RESET_S
    return Remaining(requests, tokens, min(max(reset_s, 0.001), MAX_RESET_S))


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
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)
