"""Operator views: the catalog with busy flags, and the flushed counters."""

from __future__ import annotations

import redis
from rich.table import Table

from worker.catalog import load_catalog
from worker.metrics import Metrics, read_metrics
from worker.providers import provider_mode
from worker.settings import get_settings
from worker.state import BusyFlag, RoutingState


def _flags(models: tuple[str, ...]) -> dict[str, BusyFlag] | None:
    settings = get_settings()
    if not settings.redis_url and not settings.state_url:
        return None
    client = redis.Redis.from_url(settings.state, socket_timeout=2, socket_connect_timeout=2)
    try:
        return RoutingState(client, settings.keys, Metrics()).flags(models)
    except redis.RedisError:
        return None
    finally:
        client.close()


def models_table() -> Table:
    """One row per model: tier, threshold, provider, context, prices, timeout, busy flag."""
    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    flags = _flags(catalog.model_names)
    mode = provider_mode(settings)
    table = Table(title=f"tier catalog ({mode} providers)")
    for column in ("tier", "tokens", "model", "provider", "context", "$/1M in", "$/1M out",
                   "timeout", "busy"):
        table.add_column(column)
    low = 0
    for tier in catalog.tiers:
        bound = f"{low:,}–{tier.max_tokens:,}" if tier.max_tokens else f"{low:,}+"
        for model in tier.models:
            provider = model.provider if mode == "real" else f"simulated ({model.provider})"
            flag = flags.get(model.name) if flags is not None else None
            busy = "unknown (no Redis)" if flags is None else (
                f"{flag.reason}, {flag.ttl_s:.0f}s left" if flag else "no")
            table.add_row(tier.name, bound, model.name, provider, f"{model.context_tokens:,}",
                          f"{model.usd_per_mtok_in:.2f}", f"{model.usd_per_mtok_out:.2f}",
                          f"{tier.timeout_s:g}s", busy)
        low = tier.max_tokens or low
    return table


def stats_table() -> Table:
    settings = get_settings()
    client = redis.Redis.from_url(settings.state, socket_timeout=2)
    table = Table(title="tierline counters")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for name, value in read_metrics(client, settings.keys.metrics).items():
        table.add_row(name, str(value))
    return table
