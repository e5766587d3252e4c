"""What live control says about each model, for `tierline models` and `tierline control status`:
circuit state, the window's error rate and p95, rate-limit use, drain, canary weight."""

from __future__ import annotations

import time

import redis
from rich.table import Table

from worker.catalog import Catalog
from worker.circuit import Circuit, seen_as
from worker.health import ModelHealth, health_config, read_health
from worker.overlay import Overlay
from worker.overlay_store import OverlayStore
from worker.ratelimit import RateLimiter
from worker.settings import Settings

COLUMNS = ("health", "errors (window)", "p95", "rate limit", "drain", "weight")


def live_cells(client: redis.Redis, settings: Settings, catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """Model → one cell per COLUMNS; raises redis.RedisError when Redis cannot be read."""
    config = health_config(settings)
    store = OverlayStore(client, settings.keys)
    overlay = store.version(store.current_number()).overlay
    health = read_health(client, settings.keys, catalog.model_names, config)
    limiter = RateLimiter(client, settings.keys, window_s=settings.rate_limit_window_s)
    out: dict[str, tuple[str, ...]] = {}
    for tier in catalog.tiers:
        for model in tier.models:
            name = model.name
            out[name] = (
                _health(health[name], settings),
                _errors(health[name]),
                f"{health[name].p95_ms:g} ms" if health[name].p95_ms is not None else "-",
                _limit(overlay, name, limiter),
                "drained" if name in overlay.drained else "-",
                _weight(overlay, tier.name, name),
            )
    return out


def _health(health: ModelHealth, settings: Settings) -> str:
    state = seen_as(health.stored, time.time(), health_config(settings).limits)
    return state.value if state is Circuit.CLOSED else f"{state.value} (demoted)"


def _errors(health: ModelHealth) -> str:
    window = health.window
    return f"{window.error_rate:.0%} of {window.total}" if window.total else "no calls"


def _limit(overlay: Overlay, model: str, limiter: RateLimiter) -> str:
    limit = overlay.limits.get(model)
    if limit is None:
        return "-"
    parts = [f"{limiter.usage(model)}/{limit.rpm} rpm" if limit.rpm else "", f"tpm {limit.tpm}" if limit.tpm else ""]
    return ", ".join(p for p in parts if p)


def _weight(overlay: Overlay, tier: str, model: str) -> str:
    weights = overlay.weights.get(tier)
    if not weights:
        return "-"
    return f"{100 * weights.get(model, 0) / sum(weights.values()):.0f}%"


def live_table(settings: Settings, catalog: Catalog) -> Table:
    """One row per model: what live control says about it (or why it cannot say)."""
    table = Table(title="live routing control (tierline control ...)")
    for column in ("model", *COLUMNS):
        table.add_column(column)
    if not settings.redis_url and not settings.state_url:
        table.caption = "unknown: no REDIS_URL set"
        return table
    client = redis.Redis.from_url(settings.state, socket_timeout=2, socket_connect_timeout=2)
    try:
        cells = live_cells(client, settings, catalog)
    except redis.RedisError as exc:
        table.caption = f"unknown: routing-state Redis unreachable ({exc})"
        return table
    finally:
        client.close()
    for model, row in cells.items():
        table.add_row(model, *row)
    return table
