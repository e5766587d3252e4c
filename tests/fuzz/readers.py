"""The readers of hostile input, each with what must hold for any input (the fuzz targets).

Shared by the hypothesis pass (`test_fuzz_readers.py`, generated structured input) and
the atheris one (`atheris_targets.py`, coverage-guided mutations of raw bytes). Each
function raises AssertionError, or lets another exception through, only when a reader
breaks its promise: every input ends as an error line (batch) or a code (worker).
"""

from __future__ import annotations

from typing import Any

from kombu.message import Message

from contract import job_identity
from contract.schema_validation import SchemaRefused, check_job_schema
from contract.schemas import parse_extraction_job, parse_job
from producers.batch.identity import job_id
from producers.batch.lines import BadLine, BatchLine, RawLine, parse_line
from tasks.delivery import job_payload
from worker import quality
from worker.errors import InvalidJob
from worker.intake import _refusal
from worker.limits import Limits, breach


def read_batch_line(raw: RawLine, *, route: bool) -> None:
    """A batch line is a job the run can go on with, or an error line with a code."""
    parsed = parse_line(raw, 7, route=route)
    assert isinstance(parsed, BatchLine | BadLine)
    if isinstance(parsed, BadLine):
        assert parsed.error.code and parsed.number == 7
        return
    # What the run does next with a good line must not fail either: its id, its JSON.
    job_id("/in.jsonl", parsed.custom_id, parsed.job)
    job_identity.fingerprint(parsed.job)
    parsed.custom_id.encode()


def read_job(payload: Any) -> str | None:
    """What a worker does with a decoded job before it runs: limits, validation, tenant.
    The code it is refused with, or None when it would run."""
    found = breach(payload, Limits())
    if found is not None:
        return found.code
    try:
        if isinstance(payload, dict) and "document" in payload:
            parse_extraction_job(payload)
        else:
            job = parse_job(payload)
            quality.check("a" * 50 + "b {\"x\": 1}", job.quality)
    except InvalidJob as exc:
        return exc.code
    return job_identity.tenant_problem("some-id", payload.get("tenant") if isinstance(payload, dict) else None)


def read_message(body: bytes, content_type: str, encoding: str, headers: dict[str, Any], task_id: Any) -> None:
    """A task message is taken (and its job read) or refused with a code, before it is decoded."""
    message = Message(body=body, content_type=content_type, content_encoding=encoding,
                      headers={**headers, "id": task_id}, accept={"application/json"})
    refused = _refusal(message, 200)
    if refused is not None:
        assert refused[0] in ("message_too_large", "malformed_message")
        return
    args, kwargs, _ = message.payload
    try:
        read_job(job_payload(tuple(args), dict(kwargs)))
    except InvalidJob as exc:
        assert exc.code == "malformed_message"


def read_schema(schema: Any, answer: Any) -> None:
    """A job's schema is refused with a code, or checks any answer without an error."""
    if not isinstance(schema, dict):
        return
    try:
        check_job_schema(schema)
    except SchemaRefused as exc:
        assert exc.code in ("invalid_schema", "remote_ref", "invalid_pattern")
        return
    error = quality.schema_error(answer, schema)
    assert error is None or isinstance(error, str)
