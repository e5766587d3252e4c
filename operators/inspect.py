"""Operator views: the catalog with busy flags, and the flushed counters."""

from __future__ import annotations

import redis
from rich.table import Table

from worker.catalog import Catalog, load_catalog
from worker.metrics import Metrics, read_metrics
from worker.providers import provider_mode, provider_report
from worker.settings import Settings, get_settings
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


def _provider_cells(settings: Settings, catalog: Catalog) -> dict[str, str]:
    """Model → who serves it in a worker with these settings: provider, endpoint, or why not."""
    if provider_mode(settings) == "simulated":
        return {m.name: f"simulated ({m.provider})" for t in catalog.tiers for m in t.models}
    from worker.providers.real import endpoints

    found = endpoints(settings, catalog)
    cells = {}
    for model in (m for t in catalog.tiers for m in t.models):
        endpoint = found[model.provider]
        kind = "" if endpoint.name == endpoint.kind else f", {endpoint.kind} API"
        cells[model.name] = (f"{endpoint.name} ({endpoint.shown_url}{kind})" if endpoint.ready
                             else f"{endpoint.name}: left out, {endpoint.key_env} not set")
    return cells


def models_table() -> Table:
    """One row per model: tier, threshold, provider, context, prices, timeout, busy flag."""
    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    flags = _flags(catalog.model_names)
    providers = _provider_cells(settings, catalog)
    table = Table(title=f"tier catalog — providers {provider_report(settings, catalog).text}")
    for column in ("tier", "tokens", "model", "provider", "context", "$/1M in", "$/1M out",
                   "timeout", "busy"):
        table.add_column(column)
    low = 0
    for tier in catalog.tiers:
        bound = f"{low:,}–{tier.max_tokens:,}" if tier.max_tokens else f"{low:,}+"
        for model in tier.models:
            provider = providers[model.name]
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
