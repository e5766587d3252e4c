"""A TCP relay on 127.0.0.1 in front of a PostgreSQL server that tells the test when a client's
connection pool pings the database.

SQLAlchemy's pre-ping on psycopg 3 sends the empty query ``;`` before a pooled connection is
used again. The relay passes every byte through unchanged, and calls ``on_ping(n)`` (n: the
pings seen so far) in its own thread just before a ping goes on to the server, so a test can
act at that very moment (send a process its SIGINT):

    with PingRelay(database_url) as relay:   # relay.url: the same database, through the relay
        relay.on_ping = lambda n: ...
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import make_url

from tests.relay import Relay

# A simple-protocol Query message ('Q', length 6) holding ";\0": the pool's ping.
PING = b"Q\x00\x00\x00\x06;\x00"


class PingRelay(Relay):
    """Relays connections to the server of `url` (a ``db+postgresql+psycopg://`` URL) and counts pings."""

    def __init__(self, url: str) -> None:
        target = make_url(url.removeprefix("db+"))
        super().__init__((target.host or "127.0.0.1", target.port or 5432), marker=PING)
        self.url = "db+" + target.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        self.on_ping: Callable[[int], None] = lambda _n: None
        self.on_marker = self._pinged

    def _pinged(self, seen: int) -> None:
        self.on_ping(seen)

    @property
    def pings(self) -> int:
        return self.seen
