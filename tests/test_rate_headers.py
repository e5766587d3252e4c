"""What a provider's rate-limit headers say is left, and how it tightens a shared limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from worker.keys import Keys
from worker.overlay import RateLimit
from worker.providers.rate_headers import DEFAULT_RESET_S, Remaining, remaining
from worker.ratelimit import RateLimiter
from worker.redis_pool import Client

MODEL = "mistral-small-latest"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s"}, Remaining(59, None, 1.0)),
    ({"X-RateLimit-Remaining-Tokens": "149984", "x-ratelimit-reset-tokens": "6m0s"},
     Remaining(None, 149984, tokens_reset_s=360.0)),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "10",
      "x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1m30.5s"}, Remaining(0, 10, 0.02, 90.5)),
    ({"x-ratelimitbysize-remaining-minute": "467998", "ratelimitbysize-reset": "18"},
     Remaining(None, 467998, tokens_reset_s=18.0)),
    ({"x-ratelimit-remaining-requests": "5"}, Remaining(5, None, DEFAULT_RESET_S)),
    # A reset that is no duration: the default window, never a crash or a lock-out.
    *[({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": bad}, Remaining(5, None, DEFAULT_RESET_S))
      for bad in ("soon", "nan", "inf", "-3", "1e9", "5s2")],
])
def test_what_is_left(headers: dict[str, str], expected: Remaining) -> None:
    assert remaining(httpx2.Headers(headers)) == expected


@pytest.mark.parametrize("headers", [
    {}, {"x-ratelimit-remaining-requests": "-1"}, {"x-ratelimit-remaining-tokens": "many"},
    {"x-ratelimit-limit-requests": "60"},
])
def test_headers_that_say_nothing_usable(headers: dict[str, str]) -> None:
    assert remaining(httpx2.Headers(headers)) is None


@pytest.fixture
def limiter(idle_db_url: str) -> Iterator[RateLimiter]:
    client = Client.from_url(idle_db_url)
    yield RateLimiter(client, Keys("rl-test:"))
    client.close()


GENEROUS = RateLimit(rpm=1000, tpm=10_000_000)


def test_the_provider_s_count_caps_admissions_until_its_reset(limiter: RateLimiter) -> None:
    limiter.tighten(MODEL, Remaining(requests=2, tokens=None))
    assert [limiter.admit(MODEL, GENEROUS, tokens=10).admitted for _ in range(3)] == [True, True, False]


def test_a_token_cap_refuses_what_it_cannot_hold_and_spends_what_it_admits(limiter: RateLimiter) -> None:
    limiter.tighten(MODEL, Remaining(requests=None, tokens=100, tokens_reset_s=30.0))
    refused = limiter.admit(MODEL, GENEROUS, tokens=150)
    assert not refused.admitted and 29 < refused.wait_s <= 30
    assert limiter.admit(MODEL, GENEROUS, tokens=80).admitted
    assert not limiter.admit(MODEL, GENEROUS, tokens=30).admitted  # 20 left
    assert limiter.admit(MODEL, GENEROUS, tokens=20).admitted


def test_a_later_answer_never_loosens_a_cap(limiter: RateLimiter) -> None:
    # Given the provider said 1 call is left, and it was spent
    limiter.tighten(MODEL, Remaining(requests=1, tokens=None))
    assert limiter.admit(MODEL, GENEROUS, tokens=1).admitted
    # When an answer that left earlier says 4 calls are left
    limiter.tighten(MODEL, Remaining(requests=4, tokens=None))
    # Then the cap stays spent; a lower count still lowers it
    assert not limiter.admit(MODEL, GENEROUS, tokens=1).admitted
    limiter.tighten(MODEL, Remaining(requests=None, tokens=5))
    assert not limiter.admit(MODEL, GENEROUS, tokens=6).admitted
