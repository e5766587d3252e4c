"""Mistral on the official SDK (``mistralai`` 3.x: ``mistralai.client.Mistral``, on httpx2).

One SDK client per provider object, built when the object is (per worker process,
after fork), with the SDK's retries off (strategy "none"): the router owns retries.
Every call carries the attempt's timeout (``timeout_ms``). Its HTTP client is built
here: it sends through `pools` connection pools sized to the calls in flight
(`worker.providers.transport`), with a response hook that keeps the rate-limit headers
of a 200 for the caller. The SDK's debug logger, which
prints request headers when ``MISTRAL_DEBUG`` is set, is replaced by a silent one so
the key cannot reach a log. The SDK's errors become the project's in
`MistralProvider._map_error`, and nowhere else.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from typing import Any

import httpx2
from mistralai.client import Mistral, models
from mistralai.client import errors as sdk_errors
from mistralai.client.utils import BackoffStrategy, RetryConfig
from pydantic import SecretStr

from worker import errors
from worker.providers import completions, http_errors, rate_headers
from worker.providers.base import ChatRequest, ChatResponse
from worker.providers.transport import SpreadTransport

DEFAULT_SERVER_URL = "https://api.mistral.ai"
NO_RETRY = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), retry_connection_errors=False)


class _Silent:
    """A debug logger that drops everything (the SDK's would print headers)."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        return


_MESSAGES: dict[str, Any] = {
    "system": models.SystemMessage, "user": models.UserMessage, "assistant": models.AssistantMessage,
}


def _typed(arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with the messages and response format as the SDK's own models: the SDK
    sends the same body, but builds a pydantic model class on every call to read the dict
    forms (about a millisecond of CPU each). A role it has no plain model for stays a dict."""
    messages = arguments["messages"]
    if all(m.get("role") in _MESSAGES for m in messages):
        arguments["messages"] = [_MESSAGES[m["role"]](content=m["content"]) for m in messages]
    if "response_format" in arguments:
        arguments["response_format"] = models.ResponseFormat(**arguments["response_format"])
    return arguments


class MistralProvider:
    """Chat completions through ``mistralai.client.Mistral``.

    name: the provider's name in the catalog ("mistral", or a name of your own).
    api_key: its key; key_env: where the key came from, named when it is rejected.
    base_url: the server root, without ``/v1`` (None: Mistral's).
    """

    def __init__(
        self, name: str, *, api_key: SecretStr, base_url: str | None = None, key_env: str = "MISTRAL_API_KEY",
        pools: int = 1,
    ) -> None:
        self.name = name
        self._key_env = key_env
        self._secret = api_key
        self._server_url = base_url or DEFAULT_SERVER_URL
        self._last = threading.local()  # per greenlet under gevent
        # Closed with this object, as the SDK closes the clients it makes itself.
        self._http = httpx2.Client(transport=SpreadTransport(pools), follow_redirects=True,
                                   event_hooks={"response": [self._seen]})
        weakref.finalize(self, self._http.close)
        self._client = Mistral(
            api_key=api_key.get_secret_value(), server_url=self._server_url,
            retry_config=NO_RETRY, debug_logger=_Silent(), client=self._http,
        )

    def __repr__(self) -> str:
        return f"MistralProvider({self.name!r}, base_url={self._server_url!r})"

    def chat(self, request: ChatRequest, *, timeout_s: float) -> ChatResponse:
        """One call, no retry; raises only `worker.errors.ProviderError` subclasses."""
        try:
            self._last.headers = None
            completion = self._client.chat.complete(
                **_typed(completions.arguments(request)), timeout_ms=max(1, round(timeout_s * 1000))
            )
        except (sdk_errors.MistralError, sdk_errors.NoResponseError, httpx2.TransportError) as exc:
            raise self._map_error(exc, request.model, timeout_s) from exc
        answer = completions.response(completion, provider=self.name, model=request.model)
        headers = self._last.headers
        return replace(answer, remaining=rate_headers.remaining(headers)) if headers is not None else answer

    def _seen(self, response: httpx2.Response) -> None:
        """httpx's response hook, in the calling thread (greenlet): every response's
        headers, read after a 200 (the SDK's return value does not carry them)."""
        self._last.headers = response.headers

    def close(self) -> None:
        self._http.close()

    def _map_error(self, exc: Exception, model: str, timeout_s: float) -> errors.ProviderError:
        """The one place where the Mistral SDK's errors become the project's."""
        where = {"provider": self.name, "model": model}
        if isinstance(exc, httpx2.TimeoutException):
            return errors.ProviderTimeout(f"{self.name}: no answer from {model} within {timeout_s:g}s", **where)
        if isinstance(exc, httpx2.TransportError | sdk_errors.NoResponseError):
            return errors.ProviderUnavailable(f"{self.name}: cannot reach the API for {model}", **where)
        if isinstance(exc, sdk_errors.MistralError) and not isinstance(
            exc, sdk_errors.ResponseValidationError
        ):
            return http_errors.from_status(
                exc.status_code, headers=exc.headers, body=exc.body, key_env=self._key_env,
                secret=self._secret.get_secret_value(), **where,
            )
        # A 200 the SDK could not read as a completion (broken JSON, missing fields).
        return errors.MalformedResponse(f"{self.name} answered {model} with a malformed body", **where)
