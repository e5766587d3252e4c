"""The tier catalog: a frozen model loaded from one TOML data file.

A bad file stops the worker with a `CatalogError` that names the line and the problem.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worker.errors import CatalogError

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(BaseModel):
    """One model of a tier; prices in US dollars per million tokens."""

    model_config = _FROZEN

    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    context_tokens: int = Field(gt=0)
    usd_per_mtok_in: float = Field(ge=0)
    usd_per_mtok_out: float = Field(ge=0)

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        """Price of one call; `tokens_in`/`tokens_out` are prompt and completion tokens."""
        return (tokens_in * self.usd_per_mtok_in + tokens_out * self.usd_per_mtok_out) / 1e6


BUILTIN_PROVIDERS = ("mistral", "openai")


class ProviderSpec(BaseModel):
    """A provider of your own: an endpoint speaking the OpenAI (or Mistral) chat API.

    kind: the API it speaks. base_url: its root (with ``/v1`` for the OpenAI kind).
    api_key_env: the environment variable that holds its key (never the key itself);
    None for a server that needs no key.
    """

    model_config = _FROZEN

    kind: Literal["openai", "mistral"] = "openai"
    base_url: str = Field(pattern=r"^https?://\S+$")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_the_file(cls, data: object) -> object:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError("a key does not belong in the catalog: name its variable in api_key_env")
        return data


class TierSpec(BaseModel):
    """A tier: the token volume it carries, its per-attempt timeout, its models in order."""

    model_config = _FROZEN

    name: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    models: tuple[ModelSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Candidate:
    """One model to try; `tier` is its tier's position (0 = weakest)."""

    tier: int
    tier_name: str
    model: ModelSpec
    timeout_s: float


class Catalog(BaseModel):
    """Tiers from weakest to strongest; thresholds strictly increasing, the last open-ended."""

    model_config = _FROZEN

    tiers: tuple[TierSpec, ...] = Field(min_length=1)
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _providers_known(self) -> Catalog:
        taken = sorted(set(self.providers) & set(BUILTIN_PROVIDERS))
        if taken:
            raise ValueError(f"provider names {taken} are built in: set their base URL with "
                             "TIERLINE_MISTRAL_BASE_URL / TIERLINE_OPENAI_BASE_URL")
        known = (*BUILTIN_PROVIDERS, *self.providers)
        for model in (m for t in self.tiers for m in t.models):
            if model.provider not in known:
                raise ValueError(f"model {model.name!r} names provider {model.provider!r}; "
                                 f"known: {list(known)} (add a [providers.<name>] table)")
        return self

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Catalog:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        models = [m.name for t in self.tiers for m in t.models]
        if len(set(models)) != len(models):
            raise ValueError("a model may appear in only one tier")
        bounds = [t.max_tokens for t in self.tiers[:-1]]
        if any(b is None for b in bounds):
            raise ValueError("every tier but the last needs max_tokens")
        if any(a >= b for a, b in zip(bounds, bounds[1:], strict=False)):  # type: ignore[operator]
            raise ValueError(f"max_tokens must increase from tier to tier, got {bounds}")
        if self.tiers[-1].max_tokens is not None:
            raise ValueError("the last tier carries everything above: leave out its max_tokens")
        return self

    def tier_index(self, name: str) -> int:
        """Position of tier `name`, 0 = weakest; KeyError when there is no such tier."""
        return self._tier_positions[name]

    def model(self, name: str) -> tuple[int, ModelSpec] | None:
        """The tier position and spec of model `name`, or None."""
        return self._models.get(name)

    @cached_property
    def _tier_positions(self) -> dict[str, int]:
        return {t.name: i for i, t in enumerate(self.tiers)}

    @cached_property
    def _models(self) -> dict[str, tuple[int, ModelSpec]]:
        return {m.name: (i, m) for i, t in enumerate(self.tiers) for m in t.models}

    @cached_property
    def candidates(self) -> tuple[tuple[Candidate, ...], ...]:
        """Every model as a plan's candidate, tier by tier (built once: a catalog never changes;
        live control makes a new one per overlay version)."""
        return tuple(
            tuple(Candidate(tier=position, tier_name=spec.name, model=model, timeout_s=spec.timeout_s)
                  for model in spec.models)
            for position, spec in enumerate(self.tiers)
        )

    @cached_property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for t in self.tiers for m in t.models)

    def natural_tier(self, tokens: int) -> int:
        """Position of the weakest tier whose threshold holds `tokens` routed tokens."""
        for i, tier in enumerate(self.tiers):
            if tier.max_tokens is None or tokens <= tier.max_tokens:
                return i
        return len(self.tiers) - 1


DEFAULT_CATALOG = "catalog.toml"


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate a catalog; `path` None means the packaged default."""
    if path is None:
        text = resources.files("worker").joinpath(DEFAULT_CATALOG).read_text("utf-8")
        where = "default catalog"
    else:
        text = Path(path).read_text("utf-8")
        where = str(path)
    return parse_catalog(text, where=where)


def parse_catalog(text: str, *, where: str = "catalog") -> Catalog:
    """Parse catalog TOML `text`; `where` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{where}: {exc}") from exc
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _provider_line(text, first["loc"]) or _line_of(text, first["loc"])
        field = ".".join(str(p) for p in first["loc"]) or "catalog"
        raise CatalogError(f"{where}, line {line}: {field}: {first['msg']}") from exc


_HEADER = re.compile(r"^\s*\[\[\s*([\w.]+)\s*\]\]")


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """Best line number for a pydantic error location in catalog TOML."""
    tier_i = loc[1] if len(loc) > 1 and loc[0] == "tiers" else None
    model_i = loc[3] if len(loc) > 3 and loc[2] == "models" else None
    key = next((p for p in reversed(loc) if isinstance(p, str)), None)
    seen = {"tiers": -1, "tiers.models": -1}
    best = 1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = header.group(1)
            if table == "tiers":
                seen["tiers.models"] = -1
            seen[table] = seen.get(table, -1) + 1
            if _inside(seen, tier_i, model_i):
                best = number
            continue
        if key and _inside(seen, tier_i, model_i) and re.match(rf"\s*{key}\s*=", line):
            return number
    return best


def _inside(seen: dict[str, int], tier_i: object, model_i: object) -> bool:
    """Whether the scan is inside tier `tier_i` (and model `model_i`, when given)."""
    if tier_i is None or seen["tiers"] != tier_i:
        return False
    if model_i is None:
        return seen["tiers.models"] == -1
    return bool(seen["tiers.models"] == model_i)


def _provider_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Line of a ``[providers.<name>]`` error: its key's line, else its header's."""
    if len(loc) < 2 or loc[0] != "providers":
        return None
    header = re.compile(rf"^\s*\[\s*providers\.\"?{re.escape(str(loc[1]))}\"?\s*\]")
    key = str(loc[2]) if len(loc) > 2 else None
    found = None
    for number, line in enumerate(text.splitlines(), start=1):
        if found is None:
            found = number if header.match(line) else None
        elif line.lstrip().startswith("["):
            break
        elif key and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return found
