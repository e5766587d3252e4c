"""Recycling a long-lived worker under gevent and threads, where Celery's is prefork-only.

Celery replaces a prefork pool process after `worker_max_tasks_per_child` jobs or
`worker_max_memory_per_child` of memory; its gevent and threads pools run every job in
the worker's main process and ignore both. There, tierline counts the jobs itself and,
past `max_tasks_per_child × concurrency` jobs (the same jobs per slot as prefork) or past
`max_memory_mb` of resident memory, asks the worker for a warm shutdown (SIGTERM to
itself): it stops consuming, lets its running jobs finish, and exits 0, for its
supervisor (compose's `restart:`, systemd, Kubernetes) to start a fresh one.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading

log = logging.getLogger(__name__)


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux: /proc; elsewhere its peak)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def should_recycle(jobs: int, max_jobs: int, memory_mb: float, max_memory_mb: int | None) -> str | None:
    """Why the worker should be replaced now, or None (pure: the decision only)."""
    if jobs >= max_jobs:
        return f"{jobs} jobs run (limit {max_jobs})"
    if max_memory_mb is not None and memory_mb > max_memory_mb:
        return f"resident memory {memory_mb:.0f} MB (limit {max_memory_mb} MB)"
    return None


class Recycler:
    """Counts finished jobs; past a limit, sends this process one warm-shutdown signal."""

    def __init__(self, *, max_jobs: int, max_memory_mb: int | None) -> None:
        self._max_jobs = max_jobs
        self._max_memory_mb = max_memory_mb
        self._jobs = 0
        self._asked = False
        self._lock = threading.Lock()

    def job_done(self) -> None:
        with self._lock:
            self._jobs += 1
            if self._asked:
                return
            memory = resident_mb() if self._max_memory_mb is not None else 0.0
            reason = should_recycle(self._jobs, self._max_jobs, memory, self._max_memory_mb)
            if reason is None:
                return
            self._asked = True
        log.warning("recycling this worker: %s; warm shutdown, its supervisor starts a new one", reason)
        os.kill(os.getpid(), signal.SIGTERM)
