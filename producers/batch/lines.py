"""Batch input lines → tierline jobs: OpenAI Batch API, Mistral batch and plain lines.

Accepted as they are, one JSON object a line:

- OpenAI: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``
- Mistral: ``{"custom_id", "body": {...}}``
- plain: ``{"custom_id"?, "messages": [...], ...options}`` (no custom_id: ``line-<number>``)

From a body: ``messages``; ``max_completion_tokens`` or ``max_tokens`` → ``max_output_tokens``;
``temperature``; ``response_format`` ``json_object`` → ``quality.json_output``, ``json_schema``
→ ``quality.json_schema``; ``model`` → ``pin_model`` unless the batch lets tierline route;
``metadata``. tierline's own job options (``critical``, ``pin_model``, ``min_tier``,
``max_output_tokens``, ``policy``, ``quality``) pass through. Other OpenAI parameters
(``top_p``, ``n``, ``stop``, ``seed``, ``tools``, ``stream``, ...) are ignored. Content given
as a list of text parts is joined; any other part is a bad line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from contract.codes import ErrorCode
from contract.errors import InvalidJob
from contract.schemas import ErrorInfo, parse_job

ENDPOINT = "/v1/chat/completions"
RawLine = str | bytes | Mapping[str, Any]
_PASSTHROUGH = ("critical", "pin_model", "min_tier", "max_output_tokens", "temperature", "policy")


@dataclass(frozen=True)
class BatchLine:
    """A valid line: its number in the file, its custom_id and its job (without job_id)."""

    number: int
    custom_id: str
    job: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    """A line that cannot become a job; it is reported, never sent."""

    number: int
    custom_id: str | None
    error: ErrorInfo


def load(raw: RawLine) -> dict[str, Any]:
    """The JSON object of a raw line; raises `InvalidJob` (``invalid_json``, or
    ``invalid_unicode`` for text that is not Unicode: a lone surrogate) otherwise."""
    if isinstance(raw, Mapping):
        _check_unicode(raw)
        return dict(raw)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJob(f"not JSON: {str(exc)[:200]}", code=ErrorCode.INVALID_JSON) from None
    if not isinstance(value, dict):
        raise InvalidJob(f"a line is a JSON object, got {type(value).__name__}", code=ErrorCode.INVALID_JSON)
    if _SURROGATE.search(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")):
        _check_unicode(value)
    return value


# A lone surrogate can only come from a \uD800-\uDFFF escape or its raw (CESU) bytes, which
# Python's JSON parser accepts; nothing downstream can encode it. Lines without either
# skip the full check.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _check_unicode(value: object) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise InvalidJob(f"not Unicode text: {exc.reason} at character {exc.start}",
                         code=ErrorCode.INVALID_UNICODE) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidJob(f"not a JSON line: {str(exc)[:200]}", code=ErrorCode.INVALID_JSON) from None


def custom_id_of(obj: Mapping[str, Any], number: int) -> str:
    """The line's custom_id; ``line-<number>`` for a plain line that gives none."""
    value = obj.get("custom_id")
    if value is None and "body" not in obj:
        return f"line-{number}"
    if not isinstance(value, str) or not value:
        raise InvalidJob("custom_id must be a non-empty string", code=ErrorCode.INVALID_CUSTOM_ID)
    return value


def parse_line(
    raw: RawLine, number: int, *, route: bool = False, skip: Container[str] = ()
) -> BatchLine | BadLine | None:
    """Turn line `number` (1-based) into a job, or say why it cannot be one.

    route: let tierline route even when the body names a ``model``. skip: custom_ids
    already done; such a line gives None before any further parsing.
    """
    custom_id: str | None = None
    try:
        obj = load(raw)
        custom_id = custom_id_of(obj, number)
        if custom_id in skip:
            return None
        job = job_from(_body(obj), route=route)
    except InvalidJob as exc:
        return BadLine(number, custom_id, ErrorInfo(code=exc.code, message=str(exc)))
    return BatchLine(number, custom_id, job)


def _body(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    if "url" in obj or "method" in obj:
        method, url = obj.get("method", "POST"), obj.get("url", ENDPOINT)
        if method != "POST" or url != ENDPOINT:
            raise InvalidJob(
                f"only POST {ENDPOINT} is supported, got {method} {url}", code=ErrorCode.WRONG_ENDPOINT
            )
    if "body" not in obj:
        return obj
    body = obj["body"]
    if not isinstance(body, Mapping):
        raise InvalidJob("body must be a JSON object", code=ErrorCode.INVALID_BODY)
    return body


def job_from(body: Mapping[str, Any], *, route: bool) -> dict[str, Any]:
    """A validated job payload from a chat-completion body (see the module docstring)."""
    if "messages" not in body:
        raise InvalidJob("no messages", code=ErrorCode.MISSING_MESSAGES)
    job: dict[str, Any] = {"messages": _messages(body["messages"])}
    job.update({k: body[k] for k in _PASSTHROUGH if body.get(k) is not None})
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        job["max_output_tokens"] = limit
    if body.get("model") is not None and not route and "pin_model" not in job:
        job["pin_model"] = body["model"]
    quality = _quality(body.get("response_format"), body.get("quality"))
    if quality:
        job["quality"] = quality
    if isinstance(body.get("metadata"), Mapping):
        job["metadata"] = dict(body["metadata"])
    parse_job(job)
    return job


def _messages(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidJob("messages must be a list", code=ErrorCode.INVALID_JOB)
    return [_message(m) for m in value]


def _message(value: object) -> object:
    if not isinstance(value, Mapping) or not isinstance(value.get("content"), list):
        return value
    parts = value["content"]
    if not all(isinstance(p, Mapping) and p.get("type") == "text" for p in parts):
        raise InvalidJob("only text content parts are supported", code=ErrorCode.NON_TEXT_CONTENT)
    return {**value, "content": "".join(str(p.get("text", "")) for p in parts)}


def _quality(response_format: object, quality: object) -> dict[str, Any]:
    spec: dict[str, Any] = dict(quality) if isinstance(quality, Mapping) else {}
    if not isinstance(response_format, Mapping):
        return spec
    kind = response_format.get("type")
    if kind == "json_object":
        spec["json_output"] = True
    elif kind == "json_schema":
        schema = response_format.get("json_schema") or {}
        spec.update(json_output=True, json_schema=schema.get("schema"), schema_name=schema.get("name"))
    return spec
