"""Size limits on a job, checked first and cheaply: before it is validated, counted in
tokens, or written anywhere.

Two places check them. The message intake refuses a task message whose raw body is over
`Limits.message_bytes` before anything decodes it (``message_too_large``). The task then
walks the decoded payload once (`breach`), stopping at the first limit crossed, before
pydantic sees it: each limit has its own code. A field of the wrong type is left to
the job's validation, which reports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contract.codes import ErrorCode
from contract.errors import InvalidJob
from contract.schema_validation import schema_patterns


@dataclass(frozen=True)
class Limits:
    """The limits on one job; each ``TIERLINE_MAX_*`` setting of the same name."""

    message_bytes: int = 8_000_000  # the raw task message, before it is decoded
    job_bytes: int = 1_000_000  # UTF-8 bytes of a conversation's message contents
    messages: int = 1_000
    metadata_bytes: int = 4_096  # of the metadata as JSON
    document_bytes: int = 4_000_000  # an extraction job's document, UTF-8
    schema_bytes: int = 65_536  # a JSON Schema as JSON
    patterns: int = 32  # must_match + must_not_match + JSON Schema patterns
    pattern_chars: int = 1_000
    phrases: int = 200  # refusal_phrases
    phrase_chars: int = 200


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8; InvalidJob (``invalid_unicode``) for text that has none: a
    lone surrogate, which a JSON parser accepts from ``\\ud800`` and no tokenizer can encode."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidJob(f"not Unicode text: {exc.reason} at character {exc.start}",
                         code=ErrorCode.INVALID_UNICODE) from None


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def breach(payload: object, limits: Limits) -> InvalidJob | None:
    """The first limit `payload` (a decoded job) crosses, as the job's error; None if none."""
    if not isinstance(payload, dict):
        return None
    try:
        return next(_breaches(payload, limits), None)
    except InvalidJob as exc:  # text with no UTF-8 form
        return exc


def _breaches(job: dict[str, Any], limits: Limits) -> Iterator[InvalidJob]:
    messages = job.get("messages")
    if isinstance(messages, list):
        yield from _conversation(messages, limits)
    document = job.get("document")
    if isinstance(document, str) and utf8_size(document) > limits.document_bytes:
        yield _over(ErrorCode.DOCUMENT_TOO_LARGE, "the document", utf8_size(document), limits.document_bytes, "bytes")
    metadata = job.get("metadata")
    if isinstance(metadata, dict) and _json_size(metadata) > limits.metadata_bytes:
        yield _over(ErrorCode.METADATA_TOO_LARGE, "metadata", _json_size(metadata), limits.metadata_bytes,
                    "bytes of JSON")
    if isinstance(job.get("schema"), dict):
        yield from _schema(job["schema"], limits, [])
    quality = job.get("quality")
    if isinstance(quality, dict):
        yield from _quality(quality, limits)


def _conversation(messages: list[Any], limits: Limits) -> Iterator[InvalidJob]:
    if len(messages) > limits.messages:
        yield _over(ErrorCode.TOO_MANY_MESSAGES, "messages", len(messages), limits.messages, "")
        return
    size = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        size += utf8_size(content) if isinstance(content, str) else 0
        if size > limits.job_bytes:
            yield InvalidJob(f"the conversation is over {limits.job_bytes} bytes of UTF-8 text "
                             "(TIERLINE_MAX_JOB_BYTES)", code=ErrorCode.JOB_TOO_LARGE)
            return


def _quality(quality: dict[str, Any], limits: Limits) -> Iterator[InvalidJob]:
    phrases = quality.get("refusal_phrases")
    if isinstance(phrases, list):
        if len(phrases) > limits.phrases:
            yield _over(ErrorCode.TOO_MANY_PHRASES, "refusal_phrases", len(phrases), limits.phrases, "")
        if any(isinstance(p, str) and len(p) > limits.phrase_chars for p in phrases):
            yield InvalidJob(f"a refusal phrase is over {limits.phrase_chars} characters",
                             code=ErrorCode.PHRASE_TOO_LONG)
    listed = [p for key in ("must_match", "must_not_match") if isinstance(quality.get(key), list)
              for p in quality[key]]
    if isinstance(quality.get("json_schema"), dict):
        yield from _schema(quality["json_schema"], limits, listed)
    else:
        yield from _patterns(listed, limits)


def _schema(schema: dict[str, Any], limits: Limits, listed: list[Any]) -> Iterator[InvalidJob]:
    size = _json_size(schema)
    if size > limits.schema_bytes:
        yield _over(ErrorCode.SCHEMA_TOO_LARGE, "the JSON Schema", size, limits.schema_bytes, "bytes of JSON")
        return
    yield from _patterns([*listed, *schema_patterns(schema)], limits)


def _patterns(patterns: list[Any], limits: Limits) -> Iterator[InvalidJob]:
    if len(patterns) > limits.patterns:
        yield _over(ErrorCode.TOO_MANY_PATTERNS, "patterns", len(patterns), limits.patterns, "")
    if any(isinstance(p, str) and len(p) > limits.pattern_chars for p in patterns):
        yield InvalidJob(f"a pattern is over {limits.pattern_chars} characters", code=ErrorCode.PATTERN_TOO_LONG)


def _over(code: ErrorCode, what: str, size: int, limit: int, unit: str) -> InvalidJob:
    unit = f" {unit}" if unit else ""
    return InvalidJob(f"{what}: {size}{unit}, over the limit of {limit}{unit}", code=code)
