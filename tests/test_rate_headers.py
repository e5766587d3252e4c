"""Reading what a provider's rate-limit headers say is left."""

from __future__ import annotations

import httpx2
import pytest

from worker.providers.rate_headers import DEFAULT_RESET_S, Remaining, remaining


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s"}, Remaining(59, None, 1.0)),
    ({"X-RateLimit-Remaining-Tokens": "149984", "x-ratelimit-reset-tokens": "6m0s"}, Remaining(None, 149984, 360.0)),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "10",
      "x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1m30.5s"}, Remaining(0, 10, 90.5)),
    ({"x-ratelimitbysize-remaining-minute": "467998", "ratelimitbysize-reset": "18"}, Remaining(None, 467998, 18.0)),
    ({"x-ratelimit-remaining-requests": "5"}, Remaining(5, None, DEFAULT_RESET_S)),
    ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "soon"},
     Remaining(5, None, DEFAULT_RESET_S)),
])
def test_what_is_left(headers: dict[str, str], expected: Remaining) -> None:
    assert remaining(httpx2.Headers(headers)) == expected


@pytest.mark.parametrize("headers", [
    {}, {"x-ratelimit-remaining-requests": "-1"}, {"x-ratelimit-remaining-tokens": "many"},
    {"x-ratelimit-limit-requests": "60"},
])
def test_headers_that_say_nothing_usable(headers: dict[str, str]) -> None:
    assert remaining(httpx2.Headers(headers)) is None
