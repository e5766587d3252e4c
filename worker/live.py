"""Live routing control in a worker process: what the router consults besides the catalog.

It rides on the routing-state read each delivery already makes (`read_keys` / `observe`):
the overlay's version, every model's circuit and the day's spend of each budgeted team
come back in that one round trip. A new overlay version costs one more read, once per
change per process. Attempts and spend are recorded here and flushed in batches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.budget import SpendLedger, over_budget, utc_day
from worker.circuit import Circuit, Stored, parse_stored, seen_as
from worker.health import HealthRecorder
from worker.keys import GLOBAL_TEAM, Keys
from worker.overlay import BudgetAction, RateLimit
from worker.overlay_store import Live, LiveOverlay
from worker.providers.rate_headers import Remaining
from worker.ratelimit import ADMITTED, Admission, RateLimiter
from worker.steering import Steering


@dataclass(frozen=True)
class Seen:
    """What the last routing-state read brought: circuits not closed, spend per budgeted team."""

    raw: tuple[bytes | None, ...] = ()
    circuits: dict[str, Stored] = field(default_factory=dict)
    spend: dict[str, float] = field(default_factory=dict)


class LiveRouting:
    """Overlay, circuits, shared limits, health and spend for one worker process."""

    def __init__(
        self, *, keys: Keys, models: Sequence[str], overlay: LiveOverlay, health: HealthRecorder,
        limiter: RateLimiter, ledger: SpendLedger,
    ) -> None:
        self._keys = keys
        self._models = tuple(models)
        self.overlay = overlay
        self.health = health
        self.limiter = limiter
        self.ledger = ledger
        self._seen = Seen()
        self._read: tuple[int, tuple[str, ...], list[str]] = (-1, (), [])

    @property
    def live(self) -> Live:
        return self.overlay.current

    def read_keys(self) -> list[str]:
        """Keys the routing-state read fetches for us: version, circuits, today's spend
        (built again only when the day or the overlay changes)."""
        stamp = (int(time.time() // 86_400) << 32) + self.live.number
        if stamp != self._read[0]:
            teams = tuple(self.live.overlay.budgets)
            day = utc_day(time.time())
            keys = [self._keys.overlay_version, *(self._keys.circuit(m) for m in self._models),
                    *(self._keys.spend(day, t) for t in teams)]
            self._read = (stamp, teams, keys)
        return self._read[2]

    def observe(self, values: Sequence[bytes | None] | None) -> None:
        """The values of `read_keys`, in order; None when the read failed (keep the last)."""
        if values is None:
            return
        raw = tuple(values)
        if raw != self._seen.raw:
            n = len(self._models)
            stored = ((m, parse_stored(v)) for m, v in zip(self._models, raw[1:1 + n], strict=True))
            circuits = {m: s for m, s in stored if s.state is not Circuit.CLOSED}
            spent = zip(self._read[1], raw[1 + n:], strict=False)
            self._seen = Seen(raw, circuits, {t: float(v or 0) for t, v in spent})
        version = raw[0]
        self.overlay.observe(int(version) if version is not None else 0)

    def steering(self) -> Steering:
        limits = self.health.config.limits
        weights = self.live.overlay.weights
        if not self._seen.circuits and not weights:
            return _PLAIN
        now = time.time()
        circuits = {m: seen_as(s, now, limits) for m, s in self._seen.circuits.items()}
        return Steering(weights=weights, circuits={m: c for m, c in circuits.items() if c is not Circuit.CLOSED},
                        probe_share=limits.probe_share)

    @property
    def drained(self) -> frozenset[str]:
        return frozenset(self.live.overlay.drained)

    def limit(self, model: str) -> RateLimit | None:
        return self.live.overlay.limits.get(model)

    def admit(self, model: str, *, tokens: int) -> Admission:
        """One atomic round trip for a model with a shared limit; none for the others."""
        limit = self.limit(model)
        return ADMITTED if limit is None else self.limiter.admit(model, limit, tokens=tokens)

    def told(self, model: str, left: Remaining | None) -> None:
        """The provider said what is left of its limits: tighten the model's shared limit
        (one round trip, only for a model with a shared limit whose provider says so)."""
        if left is not None and self.limit(model) is not None:
            self.limiter.tighten(model, left)

    def budget(self, team: str | None) -> BudgetAction | None:
        return over_budget(self.live.overlay.budgets, self._seen.spend, team)

    def attempted(self, model: str, *, ok: bool, latency_ms: float) -> None:
        self.health.observe(model, ok=ok, latency_ms=latency_ms)

    def spent(self, team: str | None, usd: float) -> None:
        self.ledger.add(team, usd)

    def flush(self, *, force: bool = False) -> None:
        self.health.maybe_flush(force=force)
        self.ledger.maybe_flush(force=force)


_PLAIN = Steering()

__all__ = ["GLOBAL_TEAM", "LiveRouting"]
