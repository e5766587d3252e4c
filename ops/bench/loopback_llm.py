"""A chat-completions server on loopback for benchmarks: both APIs, every connection kept
alive, each answer after a fixed delay. Runs in a process of its own, so that its CPU is
neither the client's nor the producer's, and is measured (`cpu_s`).

It is as cheap as a server can be in Python, so that the benchmark measures the client:
an asyncio Protocol (no stream objects), a request read by its Content-Length without
parsing its JSON, and one canned answer (a valid completion for both SDKs) written after
the delay by a timer. Hundreds of calls in flight cost it one timer each.

    python -m ops.bench.loopback_llm [--delay-s 1.0]    # prints its URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

ANSWER = "Answer from the loopback server: a considered reply to the conversation."


def completion_body() -> bytes:
    """A chat completion body as both APIs document it (the same for every request)."""
    return json.dumps({
        "id": "chatcmpl-loopback", "object": "chat.completion", "created": 1_700_000_000,
        "model": "loopback", "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                                          "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112},
    }).encode()


def canned_response() -> bytes:
    body = completion_body()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Answering(asyncio.Protocol):
    """One keep-alive connection: each complete request is answered `delay_s` later."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float, response: bytes) -> None:
        self._loop = loop
        self._delay_s = delay_s
        self._response = response
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = _content_length(self._buffer[:end])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length:]
            self._loop.call_later(self._delay_s, self._answer)

    def _answer(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(self._response)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    return 0


def serve(delay_s: float) -> None:
    """Serve on a free loopback port; print the URL first."""
    loop = asyncio.new_event_loop()
    response = canned_response()
    server = loop.run_until_complete(loop.create_server(
        lambda: _Answering(loop, delay_s, response), "127.0.0.1", 0, backlog=1024))
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    loop.run_forever()


class LoopbackLLM:
    """`with LoopbackLLM(delay_s=1.0) as server:` then point the SDKs at `server.url`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LoopbackLLM:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ops.bench.loopback_llm", "--delay-s", str(self.delay_s)],
            stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url:
            raise RuntimeError("the loopback LLM server did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def cpu_s(self) -> float:
        """CPU seconds the server has used so far (0 where /proc is not there to read)."""
        try:
            fields = Path(f"/proc/{self._process.pid if self._process else 0}/stat").read_text().rsplit(")", 1)[1]
        except OSError:
            return 0.0
        parts = fields.split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-s", type=float, default=1.0)
    serve(parser.parse_args().delay_s)


if __name__ == "__main__":
    main()
