"""Replace private-looking strings in text: e-mail addresses, phone, card and IBAN numbers,
API keys. Pure functions, on RE2 (linear in the text, which may be a long answer).

- `redact`: every kind, for a stored result when ``TIERLINE_REDACT_RESULTS`` is on.
- `scrub_keys`: key shapes only, and any long token that looks like one, for a provider's
  error body (a server may echo a key, or another tenant's key, back in its message).

Shapes are matched, not understood: a 9-digit reference may be redacted as a phone
number; a card number is redacted only when its Luhn checksum holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import patterns

_KEY_SHAPES = (
    r"\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic, Stripe
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{16,}=*",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
)
# In an error body: any long run of key characters (no word of a message is 32 long).
_LONG_TOKEN = r"\b[A-Za-z0-9_\-]{32,}\b"
_EMAIL = r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"
_IBAN = r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"
_CARD = r"\b[0-9](?:[ \-]?[0-9]){12,18}\b"
_PHONE = r"(?:\+|\b)[0-9](?:[ .\-]?\(?[0-9]\)?){8,14}\b"


def _rule(pattern: str, label: str, accept: Callable[[str], bool] | None = None) -> Callable[[str], str]:
    compiled = patterns.compiled(pattern)

    def replace(match: Any) -> str:
        found = match.group(0)
        return f"[{label}]" if accept is None or accept(found) else str(found)

    return lambda text: str(compiled.sub(replace, text))


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


_KEYS = [_rule(p, "key") for p in _KEY_SHAPES]
_ALL = [*_KEYS, _rule(_EMAIL, "email"), _rule(_IBAN, "iban"), _rule(_CARD, "card", _luhn), _rule(_PHONE, "phone")]
_SCRUB = [*_KEYS, _rule(_LONG_TOKEN, "key")]


def _apply(rules: list[Callable[[str], str]], text: str) -> str:
    safe = text.encode(errors="replace").decode()  # RE2 reads UTF-8: no lone surrogates
    for rule in rules:
        safe = rule(safe)
    return safe


def redact(text: str) -> str:
    """`text` with e-mail addresses, phone, card and IBAN numbers and API keys replaced."""
    return _apply(_ALL, text)


def scrub_keys(text: str) -> str:
    """`text` with anything shaped like a key or a token replaced by ``[key]``."""
    return _apply(_SCRUB, text)


def redact_value(value: Any) -> Any:
    """`value` (parsed JSON) with every string in it redacted, keys of objects included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    return value
