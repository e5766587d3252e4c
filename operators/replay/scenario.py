"""A replay scenario (TOML): outages, prices, a candidate catalog or thresholds, latency
and quality per tier or model, and a seed so that every run repeats.

```toml
seed = 7
policy = "tokens"                 # the default policy of the replayed jobs
catalog = "candidate.toml"        # a candidate catalog (relative to this file); else the worker's
attempt_budget = 3                # as TIERLINE_ATTEMPT_BUDGET
max_escalations = 2               # as TIERLINE_MAX_ESCALATIONS

[thresholds]                      # a tier's max_tokens, changed
small = 4000

[prices.mistral-small-latest]     # a model's prices, changed
usd_per_mtok_in = 0.10
usd_per_mtok_out = 0.30

[[outages]]                       # the model fails from start to end
model = "mistral-small-latest"
start = "20m"                     # from the first request: "90s", "20m", "1h", seconds, or an ISO time
end = "35m"
error = "rate_limited"            # unavailable, server_error, rate_limited, timeout, auth, unknown_model, bad_request
retry_after_s = 30

[latency.small]                   # a tier or a model: log-normal from two percentiles, plus per output token
p50_ms = 700
p95_ms = 1800
ms_per_output_token = 8

[quality.small]                   # a tier or a model: pass rate by length and category
base = 0.97
per_1k_tokens = -0.03
floor = 0.5
categories = { code = -0.05 }
```

Defaults (a tier's position, weakest first; documented in the README): latency p50/p95
600/1500 ms + 6 ms a token, 1200/3000 ms + 12 ms, 2500/6000 ms + 20 ms; pass rates
0.97 − 0.03 per 1K tokens (floor 0.5), 0.985 − 0.01 per 1K (floor 0.6), 0.995 − 0.002
per 1K (floor 0.7).
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operators.replay.workload import WorkloadError
from worker.catalog import Catalog, load_catalog
from worker.providers.sim_quality import PassCurve
from worker.providers.simulated import ErrorName

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class LatencySpec(BaseModel):
    """A model's answer time: log-normal with these percentiles, plus a cost per output token."""

    model_config = _FROZEN

    p50_ms: float = Field(gt=0)
    p95_ms: float = Field(gt=0)
    ms_per_output_token: float = Field(default=0.0, ge=0)


class OutageSpec(BaseModel):
    """`model` fails with `error` from `start` to `end` (offsets from the first request)."""

    model_config = _FROZEN

    model: str
    start: float | str
    end: float | str
    error: ErrorName = "unavailable"
    retry_after_s: float | None = Field(default=None, gt=0)

    def window(self, first_s: float) -> tuple[float, float]:
        """Start and end in Unix seconds, for a trace whose first request came at `first_s`."""
        return _moment(self.start, first_s), _moment(self.end, first_s)


class PriceSpec(BaseModel):
    model_config = _FROZEN

    usd_per_mtok_in: float | None = Field(default=None, ge=0)
    usd_per_mtok_out: float | None = Field(default=None, ge=0)


DEFAULT_LATENCY = (LatencySpec(p50_ms=600, p95_ms=1500, ms_per_output_token=6),
                   LatencySpec(p50_ms=1200, p95_ms=3000, ms_per_output_token=12),
                   LatencySpec(p50_ms=2500, p95_ms=6000, ms_per_output_token=20))
DEFAULT_QUALITY = (PassCurve(base=0.97, per_1k_tokens=-0.03, floor=0.5),
                   PassCurve(base=0.985, per_1k_tokens=-0.01, floor=0.6),
                   PassCurve(base=0.995, per_1k_tokens=-0.002, floor=0.7))


class Scenario(BaseModel):
    """What a replay assumes; every field has a documented default."""

    model_config = _FROZEN

    seed: int = 7
    policy: str = "tokens"
    catalog: Path | None = None
    attempt_budget: int = Field(default=3, ge=1, le=20)
    max_escalations: int = Field(default=2, ge=0, le=5)
    backoff_s: float = Field(default=0.05, ge=0)
    soft_time_limit_s: float = Field(default=120.0, gt=0)
    failed_call_ms: float = Field(default=200.0, ge=0)
    requeue_ms: float = Field(default=20.0, ge=0)
    thresholds: dict[str, int] = Field(default_factory=dict)
    prices: dict[str, PriceSpec] = Field(default_factory=dict)
    outages: tuple[OutageSpec, ...] = ()
    latency: dict[str, LatencySpec] = Field(default_factory=dict)
    quality: dict[str, PassCurve] = Field(default_factory=dict)

    def build_catalog(self, base: Catalog | None = None) -> Catalog:
        """The catalog replayed: the scenario's own (or `base`, or the worker's default)
        with its thresholds and prices applied."""
        catalog = load_catalog(self.catalog) if self.catalog else base or load_catalog()
        data = catalog.model_dump()
        names = {t["name"] for t in data["tiers"]}
        for tier in self.thresholds:
            if tier not in names:
                raise WorkloadError(f"scenario: thresholds names tier {tier!r}; known: {sorted(names)}")
        for tier in data["tiers"]:
            tier["max_tokens"] = self.thresholds.get(tier["name"], tier["max_tokens"])
            for model in tier["models"]:
                model.update(self.prices.get(model["name"], PriceSpec()).model_dump(exclude_none=True))
        unknown = set(self.prices) - {m["name"] for t in data["tiers"] for m in t["models"]}
        if unknown:
            raise WorkloadError(f"scenario: prices name models not in the catalog: {sorted(unknown)}")
        try:
            return Catalog.model_validate(data)
        except ValidationError as exc:
            raise WorkloadError(f"scenario: the catalog it makes is invalid: {exc.errors()[0]['msg']}") from exc

    def latency_of(self, model: str, tier: str, position: int) -> LatencySpec:
        """The latency of `model` (in tier `tier` at `position`): its own, its tier's, the default."""
        found = self.latency.get(model) or self.latency.get(tier)
        return found or DEFAULT_LATENCY[min(position, len(DEFAULT_LATENCY) - 1)]

    def quality_of(self, model: str, tier: str, position: int) -> PassCurve:
        """The pass-rate curve of `model`: its own, its tier's, the default for its position."""
        found = self.quality.get(model) or self.quality.get(tier)
        return found or DEFAULT_QUALITY[min(position, len(DEFAULT_QUALITY) - 1)]

    def with_threshold(self, tier: str, tokens: int) -> Scenario:
        """This scenario with tier `tier`'s threshold set to `tokens` (a sweep's step)."""
        return self.model_copy(update={"thresholds": {**self.thresholds, tier: tokens}})


def load_scenario(path: Path | None) -> Scenario:
    """Read a scenario file; None: the defaults. A bad file raises `WorkloadError`."""
    if path is None:
        return Scenario()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkloadError(f"{path}: {exc}") from exc
    if isinstance(data.get("catalog"), str):
        data["catalog"] = path.parent / data["catalog"]
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkloadError(f"{path}: {where}: {first['msg']}") from exc


_OFFSET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, None: 1}


def _moment(value: float | str, first_s: float) -> float:
    """Unix seconds of an offset from `first_s` ("20m", seconds) or of an ISO time."""
    if isinstance(value, int | float):
        return first_s + float(value)
    match = _OFFSET.match(value)
    if match:
        return first_s + float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WorkloadError(f"scenario: outage time {value!r}: use '20m', '90s', seconds or an ISO time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
