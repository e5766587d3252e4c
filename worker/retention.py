"""Result expiry on a result backend without TTLs (a database): a periodic purge in the worker.

Redis expires each result (and each `collected` marker) by its own TTL. A database keeps
rows until something deletes them: Celery's answer is its `celery.backend_cleanup` task
on a beat schedule, which needs a beat process somebody must run exactly once. Instead
every worker's main process purges the rows older than the result expiry every
``TIERLINE_RESULT_CLEANUP_S`` (an hour by default) on a daemon thread: an indexed
``DELETE … WHERE date_done < now - expiry``, idempotent, so several workers doing it
cost nothing but a few empty deletes. A row lives between the expiry and the expiry plus
one period.
"""

from __future__ import annotations

import logging
import threading

from results import ResultStore, ResultsUnavailable

log = logging.getLogger(__name__)


class ResultJanitor:
    """Purges expired results from `store` every `period_s` seconds until stopped."""

    def __init__(self, store: ResultStore, *, period_s: float) -> None:
        self._store = store
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tierline-result-cleanup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def purge_once(self) -> int:
        """One purge; how many rows went (0 when the backend did not answer: next period)."""
        try:
            purged = self._store.purge_expired()
        except ResultsUnavailable as exc:
            log.warning("expired results not purged this time: %s", exc)
            return 0
        if purged:
            log.info("purged %d expired results", purged)
        return purged

    def _loop(self) -> None:
        self.purge_once()
        while not self._stop.wait(self._period_s):
            self.purge_once()


def janitor_for(store: ResultStore, *, period_s: float) -> ResultJanitor | None:
    """A janitor for a backend that does not expire results itself; None for one that does."""
    return None if store.expires_itself else ResultJanitor(store, period_s=period_s)
