"""The chat-completions wire format that Mistral's and OpenAI's APIs share.

Both take ``model``, ``messages``, ``max_tokens``, ``temperature`` and
``response_format``, and both answer with ``choices[0].message.content``,
``choices[0].finish_reason`` and ``usage.prompt_tokens`` / ``usage.completion_tokens``.
The answer is read defensively: the OpenAI SDK does not validate a 200 body (a
compatible server may send anything), so a body without a usable answer becomes a
`MalformedResponse` here, the same for both vendors.
"""

from __future__ import annotations

from typing import Any

from worker import errors
from worker.providers.base import ChatRequest, ChatResponse

JSON_OBJECT = {"type": "json_object"}
# Both APIs refuse JSON mode (400) unless the conversation itself asks for JSON.
JSON_INSTRUCTION = "Answer with a single JSON object."


def arguments(request: ChatRequest) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create`` / ``chat.complete`` (no timeout)."""
    messages: list[dict[str, str]] = [dict(m) for m in request.messages]
    args: dict[str, Any] = {"model": request.model, "max_tokens": request.max_output_tokens}
    if request.temperature is not None:
        args["temperature"] = request.temperature
    if request.json_mode:
        args["response_format"] = JSON_OBJECT
        if not any("json" in m.get("content", "").lower() for m in messages):
            _instruct(messages)
    args["messages"] = messages
    return args


def _instruct(messages: list[dict[str, str]]) -> None:
    """Ask for JSON in the system message (one system message, first, suits both APIs)."""
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{messages[0]['content']}\n\n{JSON_INSTRUCTION}".lstrip()
    else:
        messages.insert(0, {"role": "system", "content": JSON_INSTRUCTION})


def response(completion: object, *, provider: str, model: str) -> ChatResponse:
    """The answer in an SDK's completion object; `MalformedResponse` when there is none.

    Usage counts that are missing, zero or not integers come back as None: the router
    then counts the tokens itself.
    """
    choices = getattr(completion, "choices", None)
    first = choices[0] if isinstance(choices, list) and choices else None
    message = getattr(first, "message", None)
    content = _text(getattr(message, "content", None))
    if not content.strip():
        raise errors.MalformedResponse(
            f"{provider} answered 200 for {model} without any text", provider=provider, model=model
        )
    usage = getattr(completion, "usage", None)
    finish = getattr(first, "finish_reason", None)
    return ChatResponse(
        content=content,
        tokens_in=_count(getattr(usage, "prompt_tokens", None)),
        tokens_out=_count(getattr(usage, "completion_tokens", None)),
        finish_reason=str(finish) if finish is not None else None,
    )


def _text(content: object) -> str:
    """A message's text: a string, or the text chunks of Mistral's chunked content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(t for t in (getattr(c, "text", None) for c in content) if isinstance(t, str))
    return ""


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
