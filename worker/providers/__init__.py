"""Providers behind one protocol, and the choice between real and simulated ones.

`auto` mode uses the real providers when any provider key is set (models whose provider
has no key are left out, loudly), and the simulated provider for every model otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from worker.catalog import Catalog
from worker.providers.base import ChatRequest, ChatResponse, Provider
from worker.providers.simulated import Script, SimulatedProvider
from worker.settings import Settings
from worker.tokens import TokenCounter

__all__ = ["ChatRequest", "ChatResponse", "Provider", "build_providers", "provider_mode"]

log = logging.getLogger(__name__)


def provider_mode(settings: Settings) -> str:
    """"simulated" or "real", as the settings and the keys present decide."""
    if settings.provider_mode != "auto":
        return settings.provider_mode
    has_key = settings.mistral_api_key is not None or settings.openai_api_key is not None
    return "real" if has_key else "simulated"


def build_providers(
    settings: Settings, catalog: Catalog, counter: TokenCounter, script: Callable[[], Script]
) -> dict[str, Provider]:
    """One provider per catalog model name, built once per worker process."""
    if provider_mode(settings) == "simulated":
        simulated = SimulatedProvider(script, counter)
        return {name: simulated for name in catalog.model_names}
    from worker.providers.real import build_real_providers

    return build_real_providers(settings, catalog)
