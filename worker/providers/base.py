"""The provider seam: one small protocol and two value objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from worker.providers.rate_headers import Remaining


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: the full conversation, every attempt (context kept across switches).

    messages: dicts in the OpenAI/Mistral chat format (``role``, ``content``).
    max_output_tokens: the completion budget. json_mode: ask for a JSON object answer.
    json_schema: the schema a JSON answer must satisfy (the simulator answers to it).
    job_id: for logs only; never sent to a provider.
    metadata: the job's metadata; only the simulated provider reads it (a replay's category).
    """

    model: str
    messages: tuple[dict[str, str], ...]
    max_output_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False
    json_schema: dict[str, object] | None = field(default=None, hash=False, compare=False)
    job_id: str = ""
    metadata: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ChatResponse:
    """A provider's answer; token counts are None when the provider reported no usage,
    `remaining` when it sent no rate-limit headers."""

    content: str
    tokens_in: int | None
    tokens_out: int | None
    finish_reason: str | None = None
    remaining: Remaining | None = None


class Provider(Protocol):
    """A model vendor. `chat` raises only `worker.errors.ProviderError` subclasses."""

    name: str

    def chat(self, request: ChatRequest, *, timeout_s: float) -> ChatResponse:
        """Send `request`; give up after `timeout_s` seconds with `ProviderTimeout`."""
        ...
