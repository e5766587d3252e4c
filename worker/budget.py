"""Daily budgets per team (``metadata.team``) or for all spend: a pure decision and a ledger.

Spend is counted in this process as jobs finish and added to
``<prefix>spend:<UTC day>:<team>`` (and ``...:*`` for everything) at most once a second;
the routing-state read of each delivery brings back the spend of every budgeted team, so
checking a budget costs no round trip. The count lags the truth by up to a flush (about
a second per worker process): a budget can be overrun by what finishes in that second.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import redis

from worker.flushing import Batched
from worker.keys import GLOBAL_TEAM, SPEND_TTL_S, Keys
from worker.overlay import Budget, BudgetAction

log = logging.getLogger(__name__)


def utc_day(now: float) -> str:
    """The UTC day of Unix time `now`, as budgets count it (YYYY-MM-DD)."""
    return _day(int(now // 86_400))


@functools.lru_cache(maxsize=4)
def _day(number: int) -> str:
    # Every finished job asks: format each day once.
    return datetime.fromtimestamp(number * 86_400, UTC).strftime("%Y-%m-%d")


def over_budget(
    budgets: Mapping[str, Budget], spend: Mapping[str, float], team: str | None
) -> BudgetAction | None:
    """What a job of `team` gets: None within budget, else the action of the budget it hit
    ("refuse" wins when the team's and the global budget are both spent)."""
    hit = [budgets[name] for name in (team, GLOBAL_TEAM)
           if name is not None and name in budgets and spend.get(name, 0.0) >= budgets[name].usd_per_day]
    if not hit:
        return None
    return "refuse" if any(b.action == "refuse" for b in hit) else "cheapest"


class SpendLedger:
    """Spend per team in this process, added to Redis in batches (`worker.flushing`)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, flush_every_s: float = 1.0) -> None:
        self._redis = client
        self._keys = keys
        self._pending: Batched[tuple[str, str]] = Batched("spend", every_s=flush_every_s)

    def add(self, team: str | None, usd: float) -> None:
        if usd <= 0:
            return
        day = utc_day(time.time())
        self._pending.add_all(((day, name), usd) for name in ((GLOBAL_TEAM, team) if team is not None
                                                              else (GLOBAL_TEAM,)))

    def maybe_flush(self, *, force: bool = False) -> None:
        self._pending.maybe_flush(self._write, force=force)

    def _write(self, pending: dict[tuple[str, str], float]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for (day, team), usd in pending.items():
            pipe.incrbyfloat(self._keys.spend(day, team), usd)
            pipe.expire(self._keys.spend(day, team), SPEND_TTL_S)
        pipe.execute()


def read_spend(client: redis.Redis, keys: Keys, teams: list[str], day: str) -> dict[str, float]:
    """Spend of each of `teams` on `day`, for operators."""
    values = client.mget([keys.spend(day, t) for t in teams]) if teams else []
    return {t: float(v) if v is not None else 0.0 for t, v in zip(teams, values, strict=True)}
