"""What a batch line ends as, and its output line in the OpenAI batch output shape.

A succeeded line: ``{"id", "custom_id", "response": {"status_code": 200, "request_id",
"body": <chat.completion with usage>}, "error": null, "tierline": {...}}``. A failed line
(the worker failed the job, or the line was bad and never sent): ``"response": null`` and
``"error": {"code", "message"}``; its copy in the errors file also carries ``"line"``.
``tierline`` holds the routing fields: job id, tier, model, provider, cost, latency,
routed tokens, every attempt and every escalation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from contract.schemas import ErrorInfo, JobResult


@dataclass(frozen=True)
class LineOutcome:
    """The end of one line: a JobResult from the worker, or a bad line's error."""

    line: int
    custom_id: str | None
    job_id: str | None = None
    result: JobResult | None = None
    invalid: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def error(self) -> ErrorInfo | None:
        if self.result is not None:
            return self.result.error
        return self.invalid

    @property
    def id(self) -> str:
        """The output line's ``id``: ``batch_req_<job id>``, ``invalid_line_<number>``."""
        if self.job_id is not None:
            return f"batch_req_{self.job_id.replace('-', '')}"
        return f"invalid_line_{self.line}"


def output_record(outcome: LineOutcome, *, created: int | None = None) -> dict[str, Any]:
    """The output line of `outcome`; `created` is the Unix time to stamp (now when None)."""
    result = outcome.result
    error = outcome.error
    record: dict[str, Any] = {
        "id": outcome.id,
        "custom_id": outcome.custom_id,
        "response": None if result is None or not result.ok else _response(result, created),
        "error": None if outcome.ok or error is None else error.model_dump(),
    }
    if result is not None:
        record["tierline"] = routing_fields(result)
    return record


def error_record(outcome: LineOutcome) -> dict[str, Any]:
    """The errors file's line for a failed or bad line: the output line plus its number."""
    return {**output_record(outcome), "line": outcome.line}


def _response(result: JobResult, created: int | None) -> dict[str, Any]:
    body = {
        "id": f"chatcmpl-{result.job_id}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": result.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.content},
            "logprobs": None,
            "finish_reason": result.finish_reason or "stop",
        }],
        "usage": {
            "prompt_tokens": result.tokens_in,
            "completion_tokens": result.tokens_out,
            "total_tokens": result.tokens_in + result.tokens_out,
        },
    }
    return {"status_code": 200, "request_id": result.job_id, "body": body}


def routing_fields(result: JobResult) -> dict[str, Any]:
    """tierline's fields of a result: where it ran, what it cost, how it got there."""
    return {
        "job_id": result.job_id,
        "status": result.status,
        "tier": result.tier,
        "model": result.model,
        "provider": result.provider,
        "cost_usd": result.cost_usd,
        "latency_ms": result.latency_ms,
        "routed_tokens": result.routed_tokens,
        "fallbacks": result.fallbacks,
        "attempts": [a.model_dump(mode="json") for a in result.attempts],
        "escalations": [e.model_dump(mode="json") for e in result.escalations],
    }
