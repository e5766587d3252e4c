"""An asyncio chat-completions server on loopback for benchmarks: both APIs, every
connection kept alive, each answer after a fixed delay. Runs in a thread of its own.

Hundreds of calls in flight cost it one coroutine each (a thread-per-connection server
would measure itself, not the client).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any


def completion(model: str, messages: list[dict[str, Any]]) -> bytes:
    """A chat completion body as both APIs document it."""
    last = str(messages[-1].get("content", "")) if messages else ""
    answer = f"Answer from {model} over loopback: {' '.join(last.split()[:8])}."
    prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
    out = len(answer.split())
    return json.dumps({
        "id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out},
    }).encode()


class LoopbackLLM:
    """`with LoopbackLLM(delay_s=1.0) as server:` then point the SDKs at `server.url`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopbackLLM:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._serve, sock=self._sock, backlog=1024))
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = json.loads(await reader.readexactly(length)) if length else {}
                await asyncio.sleep(self.delay_s)
                body = completion(str(request.get("model", "")), list(request.get("messages", [])))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
