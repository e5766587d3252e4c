"""Limits on a job: each breach its own code, found before validation, counting or any write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from producers.client import send_job, submit
from producers.extraction import submit_extraction
from tests.support import RunningWorker
from worker.limits import Limits, breach

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
SMALL = Limits(message_bytes=4_000, job_bytes=100, messages=3, metadata_bytes=50, document_bytes=200,
               schema_bytes=300, patterns=2, pattern_chars=20, phrases=2, phrase_chars=10)
HI = {"role": "user", "content": "hi"}


def _quality(**fields: Any) -> dict[str, Any]:
    return {"messages": [HI], "quality": fields}


@pytest.mark.parametrize(("job", "code"), [
    ({"messages": [HI] * 4}, "too_many_messages"),
    ({"messages": [{"role": "user", "content": "é" * 51}]}, "job_too_large"),
    ({"messages": [HI], "metadata": {"k": "v" * 60}}, "metadata_too_large"),
    ({"document": "x" * 201, "schema": {"type": "object"}}, "document_too_large"),
    (_quality(json_schema={"type": "object", "description": "d" * 300}), "schema_too_large"),
    (_quality(must_match=["a", "b"], must_not_match=["c"]), "too_many_patterns"),
    (_quality(json_schema={"type": "object", "properties": {
        "a": {"pattern": "x"}, "b": {"pattern": "y"}}, "patternProperties": {"z": {}}}), "too_many_patterns"),
    (_quality(must_match=["a" * 21]), "pattern_too_long"),
    (_quality(refusal_phrases=["a", "b", "c"]), "too_many_phrases"),
    (_quality(refusal_phrases=["a" * 11]), "phrase_too_long"),
])
def test_each_limit_has_its_own_code(job: dict[str, Any], code: str) -> None:
    found = breach(job, SMALL)
    assert found is not None and found.code == code, found


def test_a_job_within_every_limit_passes_and_odd_shapes_are_left_to_validation() -> None:
    assert breach({"messages": [HI] * 3, "metadata": {"team": "x"}, "quality": {"must_match": ["a"]}}, SMALL) is None
    for odd in (None, [], "text", {"messages": "x"}, {"messages": [1, None]}, {"quality": []}):
        assert breach(odd, SMALL) is None


@pytest.fixture(scope="module")
def limited(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    env = {"TIERLINE_MAX_MESSAGE_BYTES": SMALL.message_bytes, "TIERLINE_MAX_JOB_BYTES": 500,
           "TIERLINE_MAX_MESSAGES": SMALL.messages, "TIERLINE_MAX_DOCUMENT_BYTES": SMALL.document_bytes}
    with worker_factory(env=env) as running:
        yield running


def test_limits_through_a_worker_fail_before_any_redis_write(limited: RunningWorker) -> None:
    cases = {
        "lim-messages": (submit, [HI] * 4, "too_many_messages"),
        "lim-bytes": (submit, [{"role": "user", "content": "x" * 600}], "job_too_large"),
    }
    for job_id, (send, messages, code) in cases.items():
        result = send(messages, app=limited.app, job_id=job_id).result(timeout=30)
        assert result.error is not None and result.error.code == code, result.error
        assert result.attempts == []
        # Refused before the delivery was counted: no routing-state key for the job.
        assert not limited.redis.keys(f"{limited.prefix}deliveries:{job_id}:*")
    doc = submit_extraction("y" * 300, {"type": "object"}, app=limited.app).result(timeout=30)
    assert doc.error is not None and doc.error.code == "document_too_large"


def test_a_message_over_the_byte_limit_is_refused_before_it_is_decoded(limited: RunningWorker) -> None:
    handle = send_job({"messages": [{"role": "user", "content": "z" * 5_000}]}, app=limited.app)
    result = handle.result(timeout=30)
    assert result.error is not None and result.error.code == "message_too_large"
    assert "code=message_too_large" in limited.log()
    assert submit([HI], app=limited.app).result(timeout=30).ok  # the worker lives on
