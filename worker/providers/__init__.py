"""Providers behind one protocol, and the choice between real and simulated ones.

`auto` mode uses the real providers when any provider key is set (models whose provider
has no key are left out, loudly), and the simulated provider for every model otherwise.
The real providers' modules (and their SDKs) are imported only in real mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from worker.catalog import Catalog
from worker.providers.base import ChatRequest, ChatResponse, Provider
from worker.providers.simulated import Script, SimulatedProvider
from worker.settings import Settings
from worker.tokens import TokenCounter

__all__ = [
    "ChatRequest", "ChatResponse", "Provider", "ProviderReport", "build_providers", "provider_mode",
    "provider_report",
]

log = logging.getLogger(__name__)


def provider_mode(settings: Settings) -> str:
    """"simulated" or "real", as the settings and the keys present decide."""
    if settings.provider_mode != "auto":
        return settings.provider_mode
    has_key = settings.mistral_api_key is not None or settings.openai_api_key is not None
    return "real" if has_key else "simulated"


@dataclass(frozen=True)
class ProviderReport:
    """What a worker with given settings calls: `mode`, a line to say so, the models served
    and the models left out (their provider has no key)."""

    mode: str
    text: str
    served: tuple[str, ...]
    left_out: tuple[str, ...] = ()


def provider_report(
    settings: Settings, catalog: Catalog, environ: Mapping[str, str] | None = None
) -> ProviderReport:
    """Which providers serve which models; builds no client. environ: for catalog keys."""
    mode = provider_mode(settings)
    if mode == "simulated":
        why = "TIERLINE_PROVIDER_MODE=simulated" if settings.provider_mode == "simulated" else (
            "no provider keys set")
        return ProviderReport(mode, f"simulated ({why})", catalog.model_names)
    from worker.providers import real

    found = real.endpoints(settings, catalog, environ)
    served = real.served_models(catalog, found)
    left_out = tuple(m for m in catalog.model_names if m not in served)
    return ProviderReport(mode, real.describe(catalog, found), served, left_out)


def build_providers(
    settings: Settings, catalog: Catalog, counter: TokenCounter, script: Callable[[], Script],
    environ: Mapping[str, str] | None = None, *, concurrency: int = 1,
) -> dict[str, Provider]:
    """Catalog model name → provider, built once per worker process (after fork).

    In real mode, models whose provider has no key are absent. environ: where catalog
    providers' keys are read (default the process environment). concurrency: jobs this
    process runs at once (sizes each provider's SDK clients).
    """
    if provider_mode(settings) == "simulated":
        simulated = SimulatedProvider(script, counter)
        return {name: simulated for name in catalog.model_names}
    from worker.providers.real import build_real_providers

    return build_real_providers(settings, catalog, environ, concurrency=concurrency)
