"""Real providers: which endpoints the catalog's models use, with which keys, and the clients.

Two providers are built in: ``mistral`` (``MISTRAL_API_KEY``, ``TIERLINE_MISTRAL_BASE_URL``)
and ``openai`` (``OPENAI_API_KEY``, ``TIERLINE_OPENAI_BASE_URL``). A catalog may add
endpoints of its own under ``[providers.<name>]`` (an OpenAI-compatible vLLM, Ollama or
gateway), with the *name* of the variable that holds the key. Keys come from the
environment only, never from a job, and are held as `SecretStr` until the SDK client
is built.

A model whose provider has no key is left out: the router never plans it, and the
worker says so when it starts (`describe`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from worker.catalog import Catalog
from worker.providers.base import Provider
from worker.providers.mistral import DEFAULT_SERVER_URL, MistralProvider
from worker.providers.openai import DEFAULT_BASE_URL, OpenAIProvider
from worker.providers.transport import pools_for
from worker.settings import Settings

# Sent to an endpoint that needs no key: the SDKs would otherwise read OPENAI_API_KEY /
# MISTRAL_API_KEY from the environment and hand a real key to somebody else's server.
KEYLESS = SecretStr("no-key")

Factory = Callable[..., Provider]
KINDS: dict[str, Factory] = {"mistral": MistralProvider, "openai": OpenAIProvider}
_DEFAULT_URLS = {"mistral": DEFAULT_SERVER_URL, "openai": DEFAULT_BASE_URL}


@dataclass(frozen=True)
class Endpoint:
    """One provider as configured: the API it speaks, where, and its key (if any)."""

    name: str
    kind: str
    base_url: str | None
    key_env: str | None
    api_key: SecretStr | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        """Whether calls can be made: it has a key, or needs none."""
        return self.api_key is not None or self.key_env is None

    @property
    def shown_url(self) -> str:
        """The base URL for logs and tables, without any user:password in it."""
        parts = urlsplit(self.base_url or _DEFAULT_URLS[self.kind])
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if isinstance(value, str):
        value = SecretStr(value)
    return value if value is not None and value.get_secret_value().strip() else None


def endpoints(
    settings: Settings, catalog: Catalog, environ: Mapping[str, str] | None = None
) -> dict[str, Endpoint]:
    """Every provider name the catalog may use → its endpoint.

    environ: where a catalog provider's ``api_key_env`` is looked up (default the
    process environment); the built-in keys come from `settings`.
    """
    env = os.environ if environ is None else environ
    found = {
        "mistral": Endpoint("mistral", "mistral", settings.mistral_base_url, "MISTRAL_API_KEY",
                            _secret(settings.mistral_api_key)),
        "openai": Endpoint("openai", "openai", settings.openai_base_url, "OPENAI_API_KEY",
                           _secret(settings.openai_api_key)),
    }
    for name, spec in catalog.providers.items():
        key = _secret(env.get(spec.api_key_env)) if spec.api_key_env else None
        found[name] = Endpoint(name, spec.kind, spec.base_url, spec.api_key_env, key)
    return found


def served_models(catalog: Catalog, found: Mapping[str, Endpoint]) -> tuple[str, ...]:
    """The catalog's models whose endpoint is ready, in catalog order."""
    return tuple(m.name for t in catalog.tiers for m in t.models if found[m.provider].ready)


def describe(catalog: Catalog, found: Mapping[str, Endpoint]) -> str:
    """One line for the worker's start: the providers in use and the models left out."""
    used: dict[str, int] = {}
    missing: dict[str, list[str]] = {}
    for model in (m for t in catalog.tiers for m in t.models):
        endpoint = found[model.provider]
        if endpoint.ready:
            used[endpoint.name] = used.get(endpoint.name, 0) + 1
        else:
            missing.setdefault(f"{endpoint.key_env} not set", []).append(model.name)
    parts = [f"{name} ({count} model{'s' if count > 1 else ''}, {found[name].shown_url})"
             for name, count in used.items()]
    text = "real: " + (", ".join(parts) or "none")
    for reason, models in missing.items():
        text += f"; left out, {reason}: {', '.join(models)}"
    return text


def build_real_providers(
    settings: Settings, catalog: Catalog, environ: Mapping[str, str] | None = None, *, concurrency: int = 1
) -> dict[str, Provider]:
    """Model name → its provider; one provider per endpoint, its SDK client sending through
    `pools_for(concurrency)` connection pools.

    Models whose endpoint has no key are absent from the result. Call once per worker
    process, after fork: each provider holds its SDK clients and their connection pools.
    concurrency: jobs this process runs at once.
    """
    found = endpoints(settings, catalog, environ)
    built: dict[str, Provider] = {}
    providers: dict[str, Provider] = {}
    for model in (m for t in catalog.tiers for m in t.models):
        endpoint = found[model.provider]
        if not endpoint.ready:
            continue
        if endpoint.name not in built:
            built[endpoint.name] = KINDS[endpoint.kind](
                endpoint.name, api_key=endpoint.api_key or KEYLESS, base_url=endpoint.base_url,
                key_env=endpoint.key_env or "no key", pools=pools_for(concurrency),
            )
        providers[model.name] = built[endpoint.name]
    return providers
