"""A bounded fuzz pass (a few seconds) over every reader of hostile input, with hypothesis.

Any input ends as an error line (batch) or an `InvalidJob` with a code (worker), never
as another exception (the readers and what must hold: `tests/fuzz/readers.py`). Run
longer with ``HYPOTHESIS_FUZZ_EXAMPLES=20000``; the atheris pass on the same readers is
`test_atheris.py`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.readers import read_batch_line, read_job, read_message, read_schema
from tests.fuzz.strategies import JOBS, JSON, LINES, SCHEMAS, TEXT

BOUNDED = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@BOUNDED
@given(LINES, st.booleans())
def test_every_batch_line_is_a_job_or_an_error_line(raw: Any, route: bool) -> None:
    read_batch_line(raw, route=route)


@BOUNDED
@given(JOBS)
def test_every_job_payload_is_read_or_refused_with_a_code(payload: Any) -> None:
    read_job(payload)


@BOUNDED
@given(st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode())),
       st.sampled_from(["application/json", "application/x-python-serialize", "text/plain", ""]),
       st.sampled_from(["utf-8", "binary", "latin-1"]),
       st.dictionaries(TEXT, JSON, max_size=3), st.one_of(TEXT, st.none(), JSON))
def test_every_task_message_is_taken_or_refused_with_a_code(
    body: bytes, content_type: str, encoding: str, headers: dict[str, Any], task_id: Any
) -> None:
    read_message(body, content_type, encoding, headers, task_id)


@BOUNDED
@given(SCHEMAS, JSON)
def test_an_accepted_schema_validates_any_answer_without_error(schema: Any, answer: Any) -> None:
    read_schema(schema, answer)
