"""Sample conversations of mixed lengths, for the demo and the benchmarks (deterministic)."""

from __future__ import annotations

import random
from typing import Any

_WORDS = (
    "invoice order refund shipment customer contract clause payment delivery account "
    "warranty policy schedule report summary meeting budget forecast supplier quality "
    "the a of to and in for with on by from about please could you explain why how what"
).split()

_ASKS = (
    "Summarise this for the support team.",
    "What should we answer the customer?",
    "List the action items.",
    "Draft a short reply.",
    "Is anything in here unusual?",
)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def conversation(rng: random.Random, words: int) -> list[dict[str, str]]:
    """A system prompt, a user turn of about `words` words, and a question."""
    return [
        {"role": "system", "content": "You are a careful assistant for a backend operations team."},
        {"role": "user", "content": _text(rng, words)},
        {"role": "user", "content": rng.choice(_ASKS)},
    ]


def mixed(count: int, *, seed: int = 7) -> list[list[dict[str, Any]]]:
    """`count` conversations: about 70% short, 22% medium-length, 8% long."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.70:
            words = rng.randint(20, 1_200)
        elif roll < 0.92:
            words = rng.randint(2_500, 9_000)
        else:
            words = rng.randint(11_000, 25_000)
        out.append(conversation(rng, words))
    return out
