"""Tier catalogs for tests, written as the TOML a user would write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    context_tokens: int
    usd_per_mtok_in: float
    usd_per_mtok_out: float


@dataclass(frozen=True)
class Tier:
    name: str
    models: tuple[Model, ...]
    max_tokens: int | None = None
    timeout_s: float | None = None


def catalog_toml(*tiers: Tier) -> str:
    """The catalog file for `tiers`, weakest first."""
    lines: list[str] = []
    for tier in tiers:
        lines += ["[[tiers]]", f'name = "{tier.name}"']
        lines += [f"max_tokens = {tier.max_tokens}"] if tier.max_tokens is not None else []
        lines += [f"timeout_s = {tier.timeout_s}"] if tier.timeout_s is not None else []
        for model in tier.models:
            lines += [
                "[[tiers.models]]", f'name = "{model.name}"', f'provider = "{model.provider}"',
                f"context_tokens = {model.context_tokens}", f"usd_per_mtok_in = {model.usd_per_mtok_in}",
                f"usd_per_mtok_out = {model.usd_per_mtok_out}",
            ]
    return "\n".join(lines) + "\n"


MISTRAL_SMALL = Model("mistral-small-latest", "mistral", 32_000, 0.20, 0.60)
GPT_4O_MINI = Model("gpt-4o-mini", "openai", 128_000, 0.15, 0.60)
MISTRAL_LARGE = Model("mistral-large-latest", "mistral", 128_000, 2.00, 6.00)
GPT_4O = Model("gpt-4o", "openai", 128_000, 2.50, 10.00)
