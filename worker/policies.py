"""Routing policies: one-method classes in a registry, chosen per job or in settings.

A policy decides the tier a job starts at; the plan orders the rest, and the quality
gate escalates from there.
"""

from __future__ import annotations

from typing import Protocol

from worker.catalog import Catalog


class Policy(Protocol):
    def start_tier(self, tokens: int, catalog: Catalog) -> int:
        """Position of the tier to try first for a conversation of `tokens` routed tokens."""
        ...


class TokensPolicy:
    """The tier by token volume: the weakest tier whose threshold holds the conversation."""

    def start_tier(self, tokens: int, catalog: Catalog) -> int:
        return catalog.natural_tier(tokens)


class CascadePolicy:
    """Cheapest first: start at the weakest tier, escalate only on a failed check.

    A model whose context cannot hold the conversation is still skipped by the plan.
    """

    def start_tier(self, tokens: int, catalog: Catalog) -> int:
        return 0


POLICIES: dict[str, Policy] = {"tokens": TokensPolicy(), "cascade": CascadePolicy()}
