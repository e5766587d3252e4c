"""Versions of the live overlay in Redis, and the worker's copy of the current one.

Every change is a new version: a JSON record (the whole overlay, who, when, what) in the
hash ``<prefix>overlay:versions`` and the number in ``<prefix>overlay:version``, written
together by one script that refuses a stale base (two operators at once: the second
retries on the new version). A rollback is a change too: it stores an old overlay again
as the newest version, so history only grows.

Workers learn the current version from the routing-state read they already do for each
delivery (`worker.state`); only when it differs do they fetch that version (one HGET),
check it against their catalog, and switch. A version they cannot read or that does not
fit their catalog is logged and the last good overlay stays in force.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from worker.catalog import Catalog
from worker.errors import OverlayError
from worker.keys import Keys
from worker.overlay import EMPTY, Overlay, effective

log = logging.getLogger(__name__)

_COMMIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return -current - 1 end
local version = current + 1
redis.call('HSET', KEYS[2], version, ARGV[2])
redis.call('SET', KEYS[1], version)
return version
"""


@dataclass(frozen=True)
class Version:
    """One stored version: the overlay, who made it (`by`), when (Unix s) and the change."""

    number: int
    overlay: Overlay
    by: str
    at: float
    change: str


ORIGIN = Version(0, EMPTY, "catalog file", 0.0, "the catalog file as it is")


class OverlayStore:
    """Reads and writes overlay versions on the routing-state Redis."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._commit = client.register_script(_COMMIT)

    def current_number(self) -> int:
        raw = self._redis.get(self._keys.overlay_version)
        return int(raw) if raw is not None else 0

    def version(self, number: int) -> Version:
        """Version `number` (0: the catalog file alone); OverlayError when it is not stored."""
        if number == 0:
            return ORIGIN
        raw = self._redis.hget(self._keys.overlay_versions, str(number))
        if raw is None:
            raise OverlayError(f"no overlay version {number}")
        return _parse(number, raw)  # type: ignore[arg-type]

    def history(self) -> list[Version]:
        """Every version, oldest first."""
        raw: dict[bytes, bytes] = self._redis.hgetall(self._keys.overlay_versions)  # type: ignore[assignment]
        return [ORIGIN, *sorted((_parse(int(k), v) for k, v in raw.items()), key=lambda v: v.number)]

    def change(
        self, step: Callable[[Overlay], Overlay], catalog: Catalog, *, by: str, what: str
    ) -> Version:
        """Apply `step` to the current overlay, check it against `catalog` and store it.

        by: who asks (an OS user or a name); what: the change in words, for `history`.
        Raises OverlayError with the reason when the result is invalid.
        """
        for _ in range(10):
            base = self.version(self.current_number())
            overlay = step(base.overlay)
            effective(overlay, catalog)
            record = json.dumps({"overlay": overlay.model_dump(mode="json"), "by": by,
                                 "at": time.time(), "change": what})
            stored = int(self._commit(keys=[self._keys.overlay_version, self._keys.overlay_versions],
                                      args=[base.number, record]))
            if stored > 0:
                return self.version(stored)
        raise OverlayError("the overlay kept changing under this change: try again")

    def rollback(self, number: int, catalog: Catalog, *, by: str) -> Version:
        """Make the overlay of version `number` current again, as a new version."""
        target = self.version(number).overlay
        return self.change(lambda _: target, catalog, by=by, what=f"rollback to version {number}")


def _parse(number: int, raw: bytes) -> Version:
    try:
        data = json.loads(raw)
        return Version(number, Overlay.model_validate(data["overlay"]), str(data["by"]),
                       float(data["at"]), str(data["change"]))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise OverlayError(f"overlay version {number} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class Live:
    """The overlay a worker routes on: its version, and the catalog with it applied."""

    number: int
    overlay: Overlay
    catalog: Catalog


class LiveOverlay:
    """A worker process's current overlay, switched when the routing-state read sees a new
    version; the base catalog (the file) is what every version is applied to."""

    def __init__(self, store: OverlayStore, base: Catalog, *, retry_s: float = 1.0) -> None:
        self._store = store
        self._base = base
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._live = Live(0, EMPTY, base)
        self._refused: tuple[int, float] = (-1, 0.0)

    @property
    def current(self) -> Live:
        return self._live

    def observe(self, number: int | None) -> None:
        """The routing-state read saw version `number` (None: it could not read it)."""
        if number is None or number == self._live.number:
            return
        refused, when = self._refused
        if refused == number and time.monotonic() - when < self._retry_s:
            return
        with self._lock:
            if number != self._live.number:
                self._switch(number)

    def _switch(self, number: int) -> None:
        try:
            version = self._store.version(number)
            self._live = Live(number, version.overlay, effective(version.overlay, self._base))
        except (OverlayError, redis.RedisError) as exc:
            self._refused = (number, time.monotonic())
            log.error("overlay version %d not applied, keeping version %d: %s", number, self._live.number, exc)
            return
        log.info("overlay version %d applied (%s, by %s)", number, version.change, version.by)
