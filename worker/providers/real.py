"""Real providers: filled in by the real-providers work (Mistral and OpenAI SDKs)."""

from __future__ import annotations

from worker.catalog import Catalog
from worker.providers.base import Provider
from worker.settings import Settings


def build_real_providers(settings: Settings, catalog: Catalog) -> dict[str, Provider]:
    raise NotImplementedError("real providers are not wired yet")
