"""A throwaway PostgreSQL database on a server, dropped after: for the tests and the benchmarks.

The server is `TIERLINE_TEST_POSTGRES_URL` (default: user postgres, no password, on
127.0.0.1:5432). Each database gets a unique name (pid + random), so two runs on one
server never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

SERVER_URL = os.environ.get("TIERLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@dataclass
class PostgresServer:
    """The server's admin URL; `database()` makes a fresh database and drops it after."""

    url: str
    skipped: list[str] = field(default_factory=list)

    def reachable(self) -> str | None:
        """None when the server answers, else why not."""
        try:
            with self._admin() as engine, engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return None

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new database; yields its Celery result-backend URL (``db+postgresql+psycopg://…``)."""
        name = f"tierline_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin() as engine, engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield "db+" + make_url(self.url).set(database=name).render_as_string(hide_password=False)
        finally:
            with self._admin() as engine, engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    @contextmanager
    def _admin(self) -> Iterator[Engine]:
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            yield engine
        finally:
            engine.dispose()
