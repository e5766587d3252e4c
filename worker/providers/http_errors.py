"""What an HTTP error response from a chat-completions API means, in the project's error kinds.

Both vendor modules catch their SDK's exceptions and come here with the status, the
headers and the body, so that a 429 or a 401 means the same thing whichever SDK saw it:

| status                | error                  | router                                  |
|-----------------------|------------------------|-----------------------------------------|
| 429                   | RateLimited            | busy for Retry-After (else the default) |
| 408, 409, 5xx, other  | ProviderUnavailable    | busy for the default TTL                |
| 401, 403              | AuthenticationFailed   | disabled for the long TTL               |
| 402                   | ConfigurationError     | disabled for the long TTL (billing)     |
| 404                   | UnknownModel           | disabled for the long TTL               |
| 400, 413, 422, 4xx    | InvalidRequest / ContextTooLong | the job fails, nothing flagged |
| 2xx (a body the SDK could not read) | MalformedResponse | busy for the default TTL     |

Messages name the provider, the model and the environment variable of a rejected key;
they never carry the key itself, and the server's own text (which may quote part of a
key, as OpenAI's 401 does) is left out of authentication errors.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from worker import errors, redaction

# A bogus header must neither keep a model flagged for days nor flag it for nothing.
MIN_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 3600.0
DETAIL_CHARS = 300

_CONTEXT = re.compile(r"context[ _-]?(length|window)|too many tokens|maximum context", re.IGNORECASE)


def retry_after_s(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    headers: the response headers (case-insensitive lookups are the caller's mapping's;
    httpx headers are). now: Unix time for HTTP dates, default the current time.
    None when no header holds a usable value; otherwise clamped to 1 s .. 1 h.
    """
    raw_ms = headers.get("retry-after-ms")
    value = _seconds(raw_ms, now) if raw_ms is not None else None
    if value is not None:
        value /= 1000
    else:
        raw = headers.get("retry-after")
        value = _seconds(raw, now) if raw is not None else None
    if value is None:
        return None
    return min(max(value, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)


def _seconds(raw: str, now: float | None) -> float | None:
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return when.timestamp() - (time.time() if now is None else now)
    return number if math.isfinite(number) else None


def detail(body: object, *, secret: str | None = None) -> str:
    """The server's short explanation from an error body (JSON or text), at most 300 chars.

    secret: a key the server might echo back; it is replaced by ``[key]``.
    """
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        text = body
        try:
            body = json.loads(text)
        except ValueError:
            return _short(text, secret)
    return _short(_message(body), secret)


def _message(body: object) -> str:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return str(inner.get("message") or inner.get("detail") or inner.get("code") or "")
        return str(body.get("message") or inner)
    return "" if body is None else str(body)


def _short(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "[key]")
    text = redaction.scrub_keys(text)
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def from_status(
    status: int, *, headers: Mapping[str, str], body: object, provider: str, model: str,
    key_env: str, secret: str | None = None,
) -> errors.ProviderError:
    """The error an HTTP `status` response means.

    headers and body: the response's. provider and model: for the message and the
    router. key_env: the environment variable of the key, named when it is rejected.
    secret: the key itself, only to scrub it from the server's text.
    """
    where = {"provider": provider, "model": model}
    if status == 429:
        wait = retry_after_s(headers)
        hint = f", retry after {wait:g}s" if wait is not None else ""
        return errors.RateLimited(f"{provider} rate-limited {model} (429{hint})", retry_after_s=wait, **where)
    if status in (401, 403):
        return errors.AuthenticationFailed(
            f"{provider} rejected the API key from {key_env} ({status}); fix or rotate that key", **where
        )
    if 200 <= status < 300:
        return errors.MalformedResponse(f"{provider} answered {status} with no readable completion", **where)
    said = detail(body, secret=secret)
    kind = _kind(status, said)
    what = _SAYS.get(kind, "{provider} failed for {model!r}").format(provider=provider, model=model)
    return kind(f"{what} ({status}){': ' + said if said else ''}", **where)


_SAYS: dict[type[errors.ProviderError], str] = {
    errors.ConfigurationError: "{provider} refused {model!r} for billing",
    errors.UnknownModel: "{provider} does not serve model {model!r} at its base URL",
    errors.InvalidRequest: "{provider} refused the request for {model!r}",
    errors.ContextTooLong: "{provider} found the conversation too long for {model!r}",
}


def _kind(status: int, said: str) -> type[errors.ProviderError]:
    if status == 402:
        return errors.ConfigurationError
    if status == 404:
        return errors.UnknownModel
    if 400 <= status < 500 and status not in (408, 409):
        return errors.ContextTooLong if _CONTEXT.search(said) else errors.InvalidRequest
    return errors.ProviderUnavailable
