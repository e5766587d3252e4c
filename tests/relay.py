"""A TCP relay on 127.0.0.1 in front of a server that tells the test when a client sends a
given byte string, just before those bytes go on to the server, so a test can act at that
very moment (stop the server, send a process a signal):

    with Relay(("127.0.0.1", port), marker=b"...") as relay:   # clients connect to relay.port
        relay.on_marker = lambda n: ...                        # n: the markers seen so far

Every byte passes through unchanged, unless `on_marker` returns True: then the bytes that
carry the marker are dropped and their connection closed, as if the network failed there.
`refuse_for(s)` closes every new connection for `s` seconds, as a server that cannot be
reached (the connections already open go on); `cut()` closes those open now. A connection the server refuses is closed
on the client; when either side of a connection goes away, the other follows.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType


class Relay:
    """Relays connections to `server` and calls `on_marker` when a client sends `marker`."""

    def __init__(self, server: tuple[str, int], *, marker: bytes) -> None:
        self._server = server
        self._marker = marker
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.seen = 0
        self.on_marker: Callable[[int], bool | None] = lambda _n: None
        self._refusing_until = 0.0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self) -> Relay:
        self._threads[0].start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # the listener was shut: the relay stops
                return
            if time.monotonic() < self._refusing_until:
                client.close()
                continue
            try:
                server = socket.create_connection(self._server, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink, watch in ((client, server, True), (server, client, False)):
                pump = threading.Thread(target=self._pump, args=(source, sink, watch), daemon=True)
                self._threads.append(pump)
                pump.start()

    def refuse_for(self, seconds: float) -> None:
        """Close every new connection for `seconds` from now."""
        self._refusing_until = time.monotonic() + seconds

    def cut(self) -> None:
        """Close every connection open now, as a server that went away."""
        with self._lock:
            for connection in self._sockets:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        try:
            while data := source.recv(65536):
                if watch and self._marker in data:
                    with self._lock:
                        self.seen += 1
                        seen = self.seen
                    if self.on_marker(seen):
                        raise OSError("dropped at the marker")
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # either side went away: the other follows
            for side in (source, sink):
                try:
                    side.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not, on Linux)
        except OSError:
            pass
        self._listener.close()
        self.cut()
        with self._lock:
            for connection in self._sockets:
                connection.close()
        for thread in self._threads:
            thread.join(timeout=5)
