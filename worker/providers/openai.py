"""OpenAI, and any OpenAI-compatible server (vLLM, Ollama, a gateway), on the official SDK.

One SDK client per provider object, built when the object is (per worker process,
after fork), sending through a transport of `pools` connection pools sized to the calls
in flight (`worker.providers.transport`), with the SDK's retries off (`max_retries=0`):
the router owns retries. Every
call carries the attempt's timeout. The SDK's errors become the project's in
`OpenAIProvider._map_error`, and nowhere else.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import replace

import openai
from pydantic import SecretStr

from worker import errors
from worker.providers import completions, http_errors, rate_headers
from worker.providers.base import ChatRequest, ChatResponse
from worker.providers.transport import SpreadTransport

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """Chat completions through ``openai.OpenAI``.

    name: the provider's name in the catalog ("openai", or a name of your own).
    api_key: its key; key_env: where the key came from, named when it is rejected.
    base_url: the API root including ``/v1`` (None: OpenAI's).
    """

    def __init__(
        self, name: str, *, api_key: SecretStr, base_url: str | None = None, key_env: str = "OPENAI_API_KEY",
        pools: int = 1,
    ) -> None:
        self.name = name
        self._key_env = key_env
        self._secret = api_key
        # The SDK's own defaults (timeouts, redirects), sending through `pools` connection
        # pools; closed with this object, as the SDK closes the clients it makes itself.
        http = openai.DefaultHttpxClient(transport=SpreadTransport(pools))
        weakref.finalize(self, http.close)
        self._client = openai.OpenAI(
            api_key=api_key.get_secret_value(), base_url=base_url or DEFAULT_BASE_URL, max_retries=0,
            http_client=http,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.name!r}, base_url={str(self._client.base_url)!r})"

    def chat(self, request: ChatRequest, *, timeout_s: float) -> ChatResponse:
        """One call, no retry; raises only `worker.errors.ProviderError` subclasses."""
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                **completions.arguments(request), timeout=timeout_s
            )
            completion = raw.parse()
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise self._map_error(exc, request.model, timeout_s) from exc
        answer = completions.response(completion, provider=self.name, model=request.model)
        return replace(answer, remaining=rate_headers.remaining(raw.headers))

    def close(self) -> None:
        self._client.close()

    def _map_error(self, exc: Exception, model: str, timeout_s: float) -> errors.ProviderError:
        """The one place where the OpenAI SDK's errors become the project's."""
        where = {"provider": self.name, "model": model}
        if isinstance(exc, openai.APITimeoutError):
            return errors.ProviderTimeout(f"{self.name}: no answer from {model} within {timeout_s:g}s", **where)
        if isinstance(exc, openai.APIConnectionError):
            return errors.ProviderUnavailable(f"{self.name}: cannot reach the API for {model}", **where)
        if isinstance(exc, openai.APIStatusError):
            return http_errors.from_status(
                exc.status_code, headers=exc.response.headers, body=exc.body, key_env=self._key_env,
                secret=self._secret.get_secret_value(), **where,
            )
        # A 200 whose body is not JSON (JSONDecodeError) or not a completion.
        return errors.MalformedResponse(f"{self.name} answered {model} with a malformed body", **where)
