"""A bounded fuzz pass (a few seconds) over every reader of hostile input.

Any input ends as an error line (batch) or an `InvalidJob` with a code (worker), never
as another exception. Run longer with ``HYPOTHESIS_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.message import Message

from contract import job_identity
from contract.schema_validation import SchemaRefused, check_job_schema
from contract.schemas import parse_extraction_job, parse_job
from producers.batch.identity import job_id
from producers.batch.lines import BadLine, BatchLine, parse_line
from tasks.delivery import job_payload
from tests.fuzz.strategies import JOBS, JSON, LINES, SCHEMAS, TEXT
from worker import quality
from worker.errors import InvalidJob
from worker.intake import _refusal
from worker.limits import Limits, breach

BOUNDED = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@BOUNDED
@given(LINES, st.booleans())
def test_every_batch_line_is_a_job_or_an_error_line(raw: Any, route: bool) -> None:
    parsed = parse_line(raw, 7, route=route)
    assert isinstance(parsed, BatchLine | BadLine)
    if isinstance(parsed, BadLine):
        assert parsed.error.code and parsed.number == 7
        return
    # What the run does next with a good line must not fail either: its id, its JSON.
    job_id("/in.jsonl", parsed.custom_id, parsed.job)
    job_identity.fingerprint(parsed.job)
    parsed.custom_id.encode()


def _read(payload: Any) -> str | None:
    """What a worker does with a decoded job before it runs: limits, validation, tenant."""
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


@BOUNDED
@given(JOBS)
def test_every_job_payload_is_read_or_refused_with_a_code(payload: Any) -> None:
    _read(payload)


@BOUNDED
@given(st.one_of(st.binary(max_size=300), JSON.map(lambda v: __import__("json").dumps(v).encode())),
       st.sampled_from(["application/json", "application/x-python-serialize", "text/plain", ""]),
       st.sampled_from(["utf-8", "binary", "latin-1"]),
       st.dictionaries(TEXT, JSON, max_size=3), st.one_of(TEXT, st.none(), JSON))
def test_every_task_message_is_taken_or_refused_with_a_code(
    body: bytes, content_type: str, encoding: str, headers: dict[str, Any], task_id: Any
) -> None:
    message = Message(body=body, content_type=content_type, content_encoding=encoding,
                      headers={**headers, "id": task_id}, accept={"application/json"})
    refused = _refusal(message, 200)
    if refused is not None:
        assert refused[0] in ("message_too_large", "malformed_message")
        return
    args, kwargs, _ = message.payload
    try:
        _read(job_payload(tuple(args), dict(kwargs)))
    except InvalidJob as exc:
        assert exc.code == "malformed_message"


@BOUNDED
@given(SCHEMAS, JSON)
def test_an_accepted_schema_validates_any_answer_without_error(schema: Any, answer: Any) -> None:
    if not isinstance(schema, dict):
        return
    try:
        check_job_schema(schema)
    except SchemaRefused as exc:
        assert exc.code in ("invalid_schema", "remote_ref", "invalid_pattern")
        return
    error = quality.schema_error(answer, schema)
    assert error is None or isinstance(error, str)
