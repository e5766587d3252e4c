"""Session fixtures: a private Redis server (or REDIS_URL), real workers, the local PostgreSQL."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url

from operators.embedded import PrivateRedis
from ops.bench.scratch_db import SERVER_URL, PostgresServer
from tests.llm_server import LLMServer
from tests.support import RunningWorker, db_url, running_worker

# Database 0 is left to the user; each worker in a session gets its own database.
_databases = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a shell without job control (`cmd &` in a script)
    # inherits SIGINT ignored, and so do the processes it starts (an ignored signal stays
    # ignored across exec). The tests of Ctrl-C, in this process and in the batch commands
    # they start, need Python's own handler, as an interactive run has.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def redis_base_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with PrivateRedis(appendonly=False, databases=256) as server:
        yield server.url


@pytest.fixture(scope="session")
def worker_factory(
    redis_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., AbstractContextManager[RunningWorker]]:
    """`with worker_factory(env={...}) as w:` a real worker on a fresh Redis database."""
    tmp: Path = tmp_path_factory.mktemp("workers")

    def start(**kwargs: Any) -> AbstractContextManager[RunningWorker]:
        return running_worker(redis_base_url, _next_database(), tmp, **kwargs)

    return start


def _next_database() -> int:
    # With a user's REDIS_URL only 16 databases may exist: users of one never overlap
    # in time for long, and each flushes its database before it starts.
    return next(_databases) % (255 if not os.environ.get("REDIS_URL") else 15) + 1


def _own_database(redis_base_url: str) -> Iterator[str]:
    """A Redis database no one else uses (never database 0), flushed before and after."""
    url = db_url(redis_base_url, _next_database())
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def idle_db_url(redis_base_url: str) -> Iterator[str]:
    """A flushed Redis database that no worker consumes from."""
    yield from _own_database(redis_base_url)


@pytest.fixture(scope="module")
def module_db_url(redis_base_url: str) -> Iterator[str]:
    """A flushed Redis database of a test module's own."""
    yield from _own_database(redis_base_url)


@pytest.fixture(scope="module")
def worker(worker_factory: Callable[..., AbstractContextManager[RunningWorker]]) -> Iterator[RunningWorker]:
    """A default worker (simulated provider, default catalog) shared by a test module."""
    with worker_factory() as running:
        yield running


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LLMServer]:
    """A chat-completions server on 127.0.0.1 for the real SDKs; reset it in each test."""
    with LLMServer() as server:
        yield server


_POSTGRES = PostgresServer(SERVER_URL)


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """The local PostgreSQL server; the test is skipped, loudly, when it does not answer."""
    why = _POSTGRES.reachable()
    if why is not None:
        _POSTGRES.skipped.append(why)
        pytest.skip(f"SKIPPED: PostgreSQL at {make_url(SERVER_URL).render_as_string()} did not answer ({why})")
    return _POSTGRES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _POSTGRES.skipped:
        terminalreporter.write_sep(
            "!", f"PostgreSQL at {make_url(SERVER_URL).render_as_string()} did not answer: the tests on the "
            f"PostgreSQL result backend were SKIPPED ({_POSTGRES.skipped[0]})", red=True, bold=True)
