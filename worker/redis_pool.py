"""One bounded Redis connection pool per process, with timeouts and health checks; and
the way the hot path calls its scripts."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.connection import Connection

from worker.settings import Settings


class Client(redis.Redis):
    """redis-py's client, with the hot path's direct calls on its own pool (`Direct`)."""

    @functools.cached_property
    def direct(self) -> Direct:
        return Direct(self)


def connect(url: str, settings: Settings, *, max_connections: int | None = None) -> Client:
    """A client on a new bounded, blocking pool for `url` (call after fork).

    max_connections: the bound (default: the settings'); a caller waits up to the
    socket timeout for a free connection past it.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections or settings.redis_max_connections,
        timeout=settings.redis_socket_timeout_s,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        health_check_interval=settings.redis_health_check_s,
        retry_on_timeout=False,
    )
    return Client(connection_pool=pool)


def run_script(client: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
    """`script` (registered on `client`) run with `keys` and `args`: one EVALSHA.

    The scripts run on every delivery and attempt: on a `Client` the call goes out on its
    direct connection (`Direct`), and redis-py's Script wrapper is used only to load a script
    the server lacks (and for any other client).
    """
    if isinstance(client, Client):
        try:
            return client.direct.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            pass
    return script(keys=keys, args=args)


class Direct:
    """Commands on the hot path, sent without redis-py's per-call machinery.

    `Redis.execute_command` costs ~20 µs of client CPU a call beyond the round trip: the
    pool's checkout (a lock, and a poll of the socket for stray data), the retry wrapper,
    the response callbacks and a generic encoder. Here a command is packed in one join and
    sent on a connection from a small stack of idle ones, taken from the client's pool (and
    so counted against its bound). A connection is put back only after its whole reply was
    read: one interrupted mid-call (a time limit, a greenlet killed) is closed, so no reply
    is ever left unread on it.

    A command is sent again (through `execute_command`, on a checked connection) only when
    Redis cannot have run it: it was not sent whole, or an idle connection kept here turned
    out closed (a Redis restart, its idle timeout). A reply that does not come in time is an
    error, as it is for `execute_command` (this client has no retries): the script may be
    running, and running it twice would count a delivery or reserve a rate limit twice.
    """

    KEEP = 8  # idle connections kept out of the pool (a prefork child uses one)

    def __init__(self, client: redis.Redis) -> None:
        # The pool only: a client keeps its Direct (`Client.direct`), not the other way round.
        self._pool = client.connection_pool
        self._idle: list[Connection] = []
        self._pid = os.getpid()

    def call(self, *command: str | int | bytes) -> Any:
        if self._pid != os.getpid():  # forked with the client: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        try:
            conn, kept = self._idle.pop(), True
        except IndexError:  # none idle (a check-then-pop would race under threads)
            conn, kept = self._pool.get_connection(), False  # checked by the pool: connected, clean
        sent = False
        try:
            conn.send_packed_command([_packed(command)], check_health=True)  # type: ignore[no-untyped-call]
            sent = True
            reply = conn.read_response()
        except redis.exceptions.ResponseError:
            self._put_back(conn)  # an error reply, read whole: the connection is clean
            raise
        except redis.exceptions.ConnectionError:
            self._discard(conn)
            if sent and not kept:
                raise  # a connection the pool had just checked dropped after the command went out
            return redis.Redis(connection_pool=self._pool).execute_command(*command)  # type: ignore[no-untyped-call]
        except BaseException:  # a timeout, a time limit, a killed greenlet: the command may run
            self._discard(conn)
            raise
        self._put_back(conn)
        return reply

    def _discard(self, conn: Connection) -> None:
        conn.disconnect()  # type: ignore[no-untyped-call]
        self._pool.release(conn)

    def _put_back(self, conn: Connection) -> None:
        if len(self._idle) < self.KEEP:
            self._idle.append(conn)
        else:
            self._pool.release(conn)


def _packed(command: Sequence[str | int | bytes]) -> bytes:
    """`command` in the Redis protocol (RESP): an array of bulk strings."""
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        out.append(b"$%d\r\n%b\r\n" % (len(data := _encoded(arg)), data))
    return b"".join(out)


def _encoded(arg: object) -> bytes:
    """One argument's bytes, as redis-py's encoder makes them; a type it refuses (a bool,
    None, a list) is refused here too, rather than sent as its str (`True`, `None`)."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int) and not isinstance(arg, bool):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise redis.exceptions.DataError(f"invalid argument of type {type(arg).__name__} for a direct call")
