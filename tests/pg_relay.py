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

import socket
import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.engine import make_url

# A simple-protocol Query message ('Q', length 6) holding ";\0": the pool's ping.
PING = b"Q\x00\x00\x00\x06;\x00"


class PingRelay:
    """Relays connections to the server of `url` (a ``db+postgresql+psycopg://`` URL) and counts pings."""

    def __init__(self, url: str) -> None:
        target = make_url(url.removeprefix("db+"))
        self._server = (target.host or "127.0.0.1", target.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = "db+" + target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        self.pings = 0
        self.on_ping: Callable[[int], None] = lambda _n: None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self) -> PingRelay:
        self._threads[0].start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # the listener was shut: the relay stops
                return
            try:
                server = socket.create_connection(self._server, timeout=5)
            except OSError:  # the client sees its connection close, as if the server had refused it
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink, watch in ((client, server, True), (server, client, False)):
                pump = threading.Thread(target=self._pump, args=(source, sink, watch), daemon=True)
                self._threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                if watch and PING in data:
                    with self._lock:
                        self.pings += 1
                        seen = self.pings
                    self.on_ping(seen)
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # either side went away: the other follows
            pass

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not, on Linux)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for connection in self._sockets:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
        for thread in self._threads:
            thread.join(timeout=5)
