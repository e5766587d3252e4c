"""Ctrl-C in a batch run: a flag checked between steps, a second one at once, and an
interrupt recognised under whatever error a driver wrapped it in."""

from __future__ import annotations

import os
import signal
import time

import pytest

from producers.batch.interrupt import StopOnSigint, interrupted_by


def _until_requested(sigint: StopOnSigint) -> None:
    deadline = time.monotonic() + 5
    while not sigint.requested():
        assert time.monotonic() < deadline, "the SIGINT never reached the handler"
        time.sleep(0.001)


def test_the_first_sigint_asks_the_run_to_stop_and_raises_nothing() -> None:
    with StopOnSigint() as sigint:
        assert not sigint.requested()

        os.kill(os.getpid(), signal.SIGINT)
        _until_requested(sigint)

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own, back


def test_a_second_sigint_raises_at_once() -> None:
    with StopOnSigint() as sigint, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        _until_requested(sigint)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises out of the sleep

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_once_the_run_has_stopped_a_sigint_raises_nothing() -> None:
    # Given a run that stopped on the first SIGINT and is printing its summary
    with StopOnSigint() as sigint:
        os.kill(os.getpid(), signal.SIGINT)
        _until_requested(sigint)
        sigint.stopped()

        # When another SIGINT comes, then the summary and the exit go on
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # time for the handler to run: it must raise nothing


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnSigint() as sigint:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert not sigint.requested()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


class DriverError(Exception):
    """Stands for a driver's own error (psycopg's ProgrammingError), raised while cleaning up."""


class WrappedError(Exception):
    """Stands for the library's wrapper of it (SQLAlchemy's), raised `from` the driver's."""


def _driver_error_during_an_interrupt() -> WrappedError:
    try:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise DriverError("can't change 'autocommit' now: connection in transaction status ACTIVE") from None
        except DriverError as driver:
            raise WrappedError("(psycopg.ProgrammingError) ...") from driver
    except WrappedError as wrapped:
        return wrapped
    raise AssertionError("unreachable")


def test_an_interrupt_is_recognised_under_the_errors_that_wrap_it() -> None:
    wrapped = _driver_error_during_an_interrupt()
    # `from None` only hides the context from the traceback: it is still there
    assert isinstance(wrapped.__cause__, DriverError)
    assert isinstance(wrapped.__cause__.__context__, KeyboardInterrupt)

    assert interrupted_by(wrapped)
    assert interrupted_by(KeyboardInterrupt())
    assert not interrupted_by(DriverError("a real error, nothing interrupted"))
