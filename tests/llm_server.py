"""A real HTTP server on 127.0.0.1 speaking the chat-completions API of Mistral and OpenAI.

Both official SDKs talk to it over the network: the Mistral SDK with
``server_url=server.url`` (it appends ``/v1/chat/completions``), the OpenAI SDK with
``base_url=server.url + "/v1"``. Request and response shapes follow their API
references (usage included). What each model does is set from the test, in process:

    server.answer("gpt-4o-mini")                      # a normal 200 (the default)
    server.slow("mistral-small-latest", 5.0)          # answer after 5 s
    server.fail("mistral-small-latest", 429, headers={"Retry-After": "7"})
    server.malformed("gpt-4o-mini")                   # a 200 whose body is not JSON
    server.empty("gpt-4o-mini")                       # a 200 with an empty answer
    server.reject_key("sk-test-mistral")              # 401 for any request bearing it

Every request is recorded per model (`requests(model)`), with its Authorization header
(so a test can check which key reached which server) and the client's port (so it can
check that connections are reused).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

Kind = Literal["ok", "slow", "status", "malformed", "empty", "no_usage", "blank_usage"]
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Behaviour:
    """How one model answers: `kind`, and the status, headers, body or delay it needs."""

    kind: Kind = "ok"
    delay_s: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    model: str
    authorization: str | None
    body: dict[str, Any]
    at: float
    peer_port: int


class LLMServer:
    """A ThreadingHTTPServer on a free loopback port; use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._behaviours: dict[str, Behaviour] = {}
        self._rejected: set[str] = set()
        self._seen: dict[str, list[Seen]] = defaultdict(list)
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.llm = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LLMServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- behaviours -------------------------------------------------------------------
    def answer(self, model: str, *, headers: dict[str, str] | None = None) -> None:
        """Answer normally, with `headers` (say, rate-limit headers) on every 200."""
        self._set(model, Behaviour(headers=headers or {}))

    def slow(self, model: str, delay_s: float) -> None:
        self._set(model, Behaviour("slow", delay_s=delay_s))

    def fail(
        self, model: str, status: int, *, headers: dict[str, str] | None = None, body: str | None = None
    ) -> None:
        self._set(model, Behaviour("status", status=status, headers=headers or {}, body=body))

    def malformed(self, model: str) -> None:
        self._set(model, Behaviour("malformed"))

    def empty(self, model: str) -> None:
        self._set(model, Behaviour("empty"))

    def no_usage(self, model: str) -> None:
        """Answer without a ``usage`` object (some OpenAI-compatible servers do)."""
        self._set(model, Behaviour("no_usage"))

    def blank_usage(self, model: str) -> None:
        """Answer with ``"usage": {}`` (the counts missing, the object there)."""
        self._set(model, Behaviour("blank_usage"))

    def reject_key(self, key: str) -> None:
        """Answer 401 to every request whose bearer token is `key`, whatever the model."""
        with self._lock:
            self._rejected.add(key)

    def reset(self) -> None:
        """Every model answers normally again; the request records are cleared."""
        with self._lock:
            self._behaviours.clear()
            self._rejected.clear()
            self._seen.clear()

    def _set(self, model: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._behaviours[model] = behaviour

    # -- records ----------------------------------------------------------------------
    def requests(self, model: str | None = None) -> list[Seen]:
        """Requests received for `model` (None: every model), oldest first."""
        with self._lock:
            if model is not None:
                return list(self._seen.get(model, []))
            return sorted((s for seen in self._seen.values() for s in seen), key=lambda s: s.at)

    def count(self, model: str | None = None) -> int:
        return len(self.requests(model))

    def _record(self, seen: Seen) -> Behaviour:
        with self._lock:
            self._seen[seen.model].append(seen)
            if (seen.authorization or "").removeprefix("Bearer ") in self._rejected:
                return Behaviour("status", status=401)
            return self._behaviours.get(seen.model, Behaviour())

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def completion(model: str, messages: list[dict[str, Any]], *, usage: str = "full",
               content: str | None = None) -> dict[str, Any]:
    """A chat completion body as both APIs document it."""
    last = str(messages[-1].get("content", "")) if messages else ""
    answer = content if content is not None else (
        f"Answer from {model} over loopback: {' '.join(last.split()[:8])}."
    )
    prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
    completion_tokens = len(answer.split())
    body: dict[str, Any] = {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer},
            "finish_reason": "stop",
        }],
    }
    if usage == "blank":
        body["usage"] = {}
    elif usage == "full":
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


def _error_body(status: int) -> str:
    # OpenAI's error envelope; Mistral's SDK reads status and headers, not the body.
    return json.dumps({"error": {"message": f"loopback error {status}", "type": "test",
                                 "param": None, "code": str(status)}})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    llm: LLMServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered, flushed once per response: headers and body leave in one segment
    # (two small writes meet Nagle and delayed ACK, 40 ms per call).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or self.path.rstrip("/") != CHAT_PATH:
            self._send(400 if body is None else 404, _error_body(400 if body is None else 404))
            return
        llm = self.server.llm
        seen = Seen(self.path, str(body.get("model", "")), self.headers.get("Authorization"),
                    body, time.monotonic(), int(self.client_address[1]))
        behaviour = llm._record(seen)
        if behaviour.kind == "slow":
            llm._sleep(behaviour.delay_s)
        self._send(*_reply(behaviour, body))

    def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout): nothing to answer.
            self.close_connection = True


_USAGE = {"no_usage": "none", "blank_usage": "blank"}


def _reply(behaviour: Behaviour, body: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    """Status, body text and extra headers for one request under `behaviour`."""
    model, messages = str(body.get("model", "")), list(body.get("messages", []))
    if behaviour.kind == "status":
        text = behaviour.body if behaviour.body is not None else _error_body(behaviour.status)
        return behaviour.status, text, behaviour.headers
    if behaviour.kind == "malformed":
        return 200, '{"id": "chatcmpl-broken", "choices": [', {}
    if behaviour.kind == "empty":
        return 200, json.dumps(completion(model, messages, content="")), {}
    return 200, json.dumps(completion(model, messages, usage=_USAGE.get(behaviour.kind, "full"))), behaviour.headers
