"""tierline's own soft time limit, on every pool.

Celery raises `SoftTimeLimitExceeded` in a job only under prefork (a signal sent to the
pool process). Its gevent pool implements the hard limit alone (as a `gevent.Timeout`),
and its threads and solo pools neither. tierline's deadline, its `timeout` JobResult with
the cut-short call listed and `finishing()` rest on that exception, so the task body arms
`soft_limit` itself on the pools that lack it:

- gevent: a `gevent.Timeout` raising `SoftTimeLimitExceeded` in the job's greenlet (it
  lands at the greenlet's next switch: any I/O or sleep);
- threads and solo: a timer thread sets `SoftTimeLimitExceeded` as the job thread's
  asynchronous exception (it lands at the thread's next Python instruction: a thread
  blocked inside one C call gets it when that call returns).

Under gevent, Celery's hard limit arrives as a `gevent.Timeout` in the same greenlet:
`hard_limit_errors()` names it, so the task boundary ends the job as one failed JobResult
instead of a bare Celery failure.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from types import FrameType

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

log = logging.getLogger(__name__)


class PoolKind(StrEnum):
    """How a Celery pool runs a job, as far as time limits go."""

    PREFORK = "prefork"  # a process per job; Celery enforces both limits
    GEVENT = "gevent"  # greenlets; Celery enforces the hard limit only
    THREADS = "threads"  # threads (and solo: the main thread); Celery enforces neither


def pool_kind(name: str) -> PoolKind:
    """The kind of Celery's pool named `name` (`-P` value or pool module name)."""
    if name in ("prefork", "processes", ""):
        return PoolKind.PREFORK
    if name in ("gevent", "eventlet"):
        return PoolKind.GEVENT
    return PoolKind.THREADS


def soft_limit(kind: PoolKind, seconds: float) -> ContextManager[None]:
    """Raise `SoftTimeLimitExceeded` in this job once, `seconds` from now, if Celery won't."""
    if kind is PoolKind.PREFORK:
        return nullcontext()
    if kind is PoolKind.GEVENT:
        return _greenlet_alarm(seconds)
    return _thread_alarm(seconds)


class DecisionHold:
    """Under prefork, from a job's decision to the next task's start, a soft limit is logged, not raised.

    Celery writes a task's result after the task returns, and billiard then sends it to the
    worker's main process, all still under the soft limit (the pool process's SIGUSR1). A
    limit landing there (Redis away at the job's deadline, the write retried) made Celery
    store a bare `SoftTimeLimitExceeded` in place of the job's JobResult. Once the job has
    decided (`hold`), the limit has nothing left to stop: the process's SIGUSR1 handler,
    wrapped on first use, logs it instead, until the next task starts (`release`, at
    `task_prerun`). The other pools' soft limit ends with the task body (`soft_limit`).
    """

    def __init__(self, kind: PoolKind) -> None:
        self._to_wrap = kind is PoolKind.PREFORK  # at the first hold, after billiard set its handler
        self._decided: str | None = None  # read by the wrapper only, when there is one

    def hold(self, job_id: str) -> None:
        if self._to_wrap:
            self._to_wrap = False
            self._wrap()
        self._decided = job_id

    def release(self) -> None:
        self._decided = None

    def _wrap(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set a handler: the limit stays as it is
        raise_limit = signal.getsignal(signal.SIGUSR1)
        if not callable(raise_limit):
            return  # not billiard's handler (no soft limit here): nothing to hold

        def after_decision(signum: int, frame: FrameType | None) -> None:
            if self._decided is None:
                raise_limit(signum, frame)
            else:
                log.warning("soft time limit job=%s after its decision: its result is being stored", self._decided)

        signal.signal(signal.SIGUSR1, after_decision)


def hard_limit_errors(kind: PoolKind) -> tuple[type[BaseException], ...]:
    """What Celery's hard limit raises inside a job on this pool (none under prefork: it kills)."""
    if kind is PoolKind.GEVENT:
        import gevent

        return (gevent.Timeout, TimeLimitExceeded)
    return (TimeLimitExceeded,)


@contextmanager
def _greenlet_alarm(seconds: float) -> Iterator[None]:
    import gevent

    alarm = gevent.Timeout(seconds, SoftTimeLimitExceeded(f"soft time limit ({seconds:g}s) exceeded"))
    alarm.start()
    try:
        yield
    finally:
        alarm.close()


class _ThreadAlarm:
    """Sets `SoftTimeLimitExceeded` on one thread after a delay, unless disarmed first."""

    def __init__(self, seconds: float) -> None:
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._state = "armed"  # then "fired" or "disarmed"
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._state == "armed":
                self._state = "fired"
                _set_async_exc(self._thread_id, SoftTimeLimitExceeded)

    def disarm(self) -> None:
        """Stop the timer; an exception set but not yet raised is taken back."""
        for _ in range(3):  # a pending exception may land inside this very method
            try:
                with self._lock:
                    fired, self._state = self._state == "fired", "disarmed"
                self._timer.cancel()
                if fired:
                    _set_async_exc(self._thread_id, None)
                return
            except SoftTimeLimitExceeded:
                continue


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


@contextmanager
def _thread_alarm(seconds: float) -> Iterator[None]:
    alarm = _ThreadAlarm(seconds)
    alarm.start()
    try:
        yield
    finally:
        alarm.disarm()
