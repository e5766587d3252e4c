"""The hot path's direct Redis calls (`worker.redis_pool.Direct`) on a real Redis: a reply is
never read by the wrong call, and a lost or forked connection is replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest
import redis

from worker.redis_pool import Client, Direct, connect, run_script
from worker.settings import Settings


class Interrupted(Exception):
    pass


@pytest.fixture
def client(idle_db_url: str) -> Iterator[redis.Redis]:
    c = connect(idle_db_url, Settings(redis_url=idle_db_url))
    yield c
    c.connection_pool.disconnect()


def test_a_call_interrupted_while_it_waits_leaves_no_reply_for_the_next(client: redis.Redis) -> None:
    # Given a call blocked on its reply, interrupted (as a time limit interrupts a job)
    direct = Direct(client)
    assert direct.call("PING") == b"PONG"

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            direct.call("BLPOP", "direct:list", 2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # When the reply it waited for becomes available, and the next call goes out
    client.rpush("direct:list", "late")
    # Then the next call reads its own reply, not the interrupted call's
    assert direct.call("SET", "direct:key", "v") == b"OK"
    assert direct.call("GET", "direct:key") == b"v"


def test_a_connection_killed_under_it_is_replaced(client: redis.Redis) -> None:
    # Given a direct connection kept idle after a call
    direct = Direct(client)
    assert direct.call("CLIENT", "SETNAME", "direct-victim") == b"OK"
    # When Redis drops it
    killed = client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert killed >= 1
    # Then the next call still gets its answer (on a new connection)
    assert direct.call("INCR", "direct:counter") == 1


def test_a_missing_script_is_loaded_and_the_connection_stays_usable(client: redis.Redis) -> None:
    # Given a script the server does not hold (flushed)
    script = client.register_script("return {KEYS[1], ARGV[1]}")
    client.script_flush()
    # When it runs through the hot path's call
    assert run_script(client, script, ["direct:k"], ["a"]) == [b"direct:k", b"a"]
    # Then it ran, and the next call on the same path reads its own reply
    assert run_script(client, script, ["direct:k2"], [7]) == [b"direct:k2", b"7"]


def test_a_workers_client_runs_its_scripts_on_its_direct_connection(client: redis.Redis) -> None:
    # Given the client a worker connects with, and a script the server holds
    assert isinstance(client, Client)
    script = client.register_script("return ARGV[1]")
    script(keys=[], args=["load"])
    # When scripts run through the hot path's call, one after another
    assert run_script(client, script, [], ["first"]) == b"first"
    kept = list(client.direct._idle)
    for n in range(5):
        assert run_script(client, script, [], [n]) == str(n).encode()
    # Then each went out on the one connection the client's Direct keeps idle between calls
    assert len(kept) == 1
    assert client.direct._idle == kept


def test_a_forked_child_does_not_use_its_parents_connection(client: redis.Redis) -> None:
    # Given a parent whose direct connection is idle after a call
    direct = Direct(client)
    assert direct.call("SET", "direct:owner", "parent") == b"OK"
    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, its own replies
        try:
            os.read(go_read, 1)
            ok = all(direct.call("INCR", "direct:child") == n for n in range(1, 501))
            os.write(done_write, b"1" if ok else b"0")
        except BaseException:
            os.write(done_write, b"0")
        finally:
            os._exit(0)
    # When both call at once, many times
    os.write(go_write, b"x")
    replies = [direct.call("GET", "direct:owner") for _ in range(500)]
    os.waitpid(pid, 0)
    # Then neither read the other's replies
    assert os.read(done_read, 1) == b"1"
    assert set(replies) == {b"parent"}


def test_redis_unreachable_is_a_connection_error() -> None:
    # Given a client whose Redis does not answer (a closed port)
    url = "redis://127.0.0.1:9/0"
    client = connect(url, Settings(redis_url=url, redis_socket_timeout_s=0.5))
    # When the hot path calls it, Then it fails as every other call does: a ConnectionError
    with pytest.raises(redis.exceptions.ConnectionError):
        Direct(client).call("PING")


# INCR; the first time, Redis then stays busy with it for 0.8 s (serving no one else).
SLOW_FIRST = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  local t = redis.call('TIME')
  local s = t[1] * 1e6 + t[2]
  repeat local u = redis.call('TIME') until u[1] * 1e6 + u[2] - s > 800000
end
return n
"""


def test_a_script_whose_reply_is_late_is_not_run_a_second_time(idle_db_url: str) -> None:
    # Given a client with a 0.5 s socket timeout, and a counting script that takes 0.8 s
    # the first time (a Redis busy past the timeout)
    client = connect(idle_db_url, Settings(redis_url=idle_db_url, redis_socket_timeout_s=0.5))
    script = client.register_script(SLOW_FIRST)
    client.delete("direct:late")
    client.script_load(SLOW_FIRST)
    # When the hot path runs it and its reply does not come within the timeout
    with pytest.raises(redis.exceptions.TimeoutError):
        run_script(client, script, ["direct:late"], [])
    # Then it ran once: it was not sent again after the timeout (on a delivery counter, a
    # first delivery would have read 2, and waited for its own lease as if another worker ran it)
    assert client.get("direct:late") == b"1"
    client.connection_pool.disconnect()


@pytest.mark.parametrize("value", [True, None, [1]])
def test_an_argument_redis_py_would_refuse_is_refused_not_sent_as_text(client: redis.Redis, value: object) -> None:
    # Given a value redis-py refuses to send (a bool, None, a list)
    direct = Direct(client)
    # When the hot path is handed one, Then it is refused, as redis-py refuses it
    with pytest.raises(redis.exceptions.DataError):
        direct.call("SET", "direct:typed", value)  # type: ignore[arg-type]
    with pytest.raises(redis.exceptions.DataError):
        client.set("direct:typed", value)  # type: ignore[arg-type]
    # and the connection stays usable
    assert direct.call("SET", "direct:typed", 1.5) == b"OK" and client.get("direct:typed") == b"1.5"
