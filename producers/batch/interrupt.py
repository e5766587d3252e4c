"""Ctrl-C during a batch run: a request to stop between two steps, not an exception thrown
into whatever code runs at that moment.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is. Inside a
result backend's driver that can come out as the driver's error instead (a KeyboardInterrupt
in the middle of SQLAlchemy's pool ping leaves the psycopg connection "in a query", and the
ping's cleanup raises ``ProgrammingError``), or not at all (raised in a ``__del__``, Python
prints it and goes on). So while a run runs, `StopOnSigint` turns the first SIGINT into a
flag the run checks between its steps (`BatchHandle.results`' ``stop``); only a second
SIGINT raises at once, for a run stuck in a call that does not return, and
`interrupted_by` still recognises it under whatever error wraps it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopOnSigint:
    """While in effect (`with`), SIGINT asks the run to stop: `requested()` turns True.

    A second SIGINT raises KeyboardInterrupt at once, until `stopped()` says the run is
    over (its summary and exit then go on undisturbed). Off the main thread, or when SIGINT
    is not Python's default handler (ignored, or an embedding program's own), nothing
    changes: the handler is the process's, not the run's, to replace.
    """

    def __init__(self) -> None:
        self._requested = False
        self._over = False
        self._installed = False

    def requested(self) -> bool:
        """Whether a SIGINT arrived since `with` began."""
        return self._requested

    def stopped(self) -> None:
        """The run is over, finished or interrupted: a SIGINT from now on raises nothing."""
        self._over = True

    def _on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        if self._requested and not self._over:
            raise KeyboardInterrupt
        self._requested = True

    def __enter__(self) -> StopOnSigint:
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False


def interrupted_by(exc: BaseException) -> bool:
    """Whether `exc` is a KeyboardInterrupt, or an error raised while one was on its way
    (a driver's error whose ``__cause__`` or ``__context__`` chain holds it)."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        chain += [current.__cause__, current.__context__]
    return False
