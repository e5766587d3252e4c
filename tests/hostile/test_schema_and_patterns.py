"""Job data reaches no network and runs in linear time: schemas, `$ref`s and patterns."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from contract.schemas import parse_extraction_job, parse_job
from producers.client import submit
from producers.extraction import submit_extraction
from tests.support import RunningWorker
from worker import quality
from worker.errors import InvalidJob

ASK = [{"role": "user", "content": "Say something."}]
CATASTROPHIC = "(a+)+$"
EVIL_TEXT = "a" * 50 + "b"


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        self.requests.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback that serves a schema to anyone who asks, and records who did."""
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requests": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _with_ref(ref: str) -> dict[str, object]:
    return {"type": "object", "properties": {"name": {"$ref": ref}}, "required": ["name"]}


@pytest.mark.parametrize("ref", ["http://169.254.169.254/latest/meta-data", "file:///etc/passwd",
                                 "other.json", "//example.invalid/s.json"])
def test_a_ref_that_leaves_the_schema_is_refused_when_the_job_is_read(ref: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": _with_ref(ref)}})
    assert caught.value.code == "remote_ref"


def test_a_local_ref_is_accepted_and_one_that_points_nowhere_is_invalid() -> None:
    local = {**_with_ref("#/$defs/name"), "$defs": {"name": {"type": "string"}}}
    assert parse_job({"messages": ASK, "quality": {"json_schema": local}}).quality is not None
    assert quality.schema_error({"name": 3}, local) is not None
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": _with_ref("#/$defs/missing")}})
    assert caught.value.code == "invalid_schema"


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"allOf": [{"type": "object"}, {"$ref": "#"}]},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    {"if": {"type": "object"}, "then": {"$ref": "#"}},
    {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}},
    {"$defs": {"x": {"allOf": [{"$ref": "#/$defs/x"}]}}, "items": {"$ref": "#/$defs/x"}},
    {"$id": "http://x.invalid/p", "anyOf": [{"$ref": "#"}], "$defs": {"d": {"$id": "http://x.invalid/p"}}},
    {"$schema": "http://json-schema.org/draft-04/schema#", "definitions": {"x": {"type": "string"}},
     "allOf": [{"id": "http://x.invalid/s", "definitions": {"x": {"$ref": "#"}},
                "allOf": [{"$ref": "#/definitions/x"}]}]},
], ids=["itself", "all-of", "through-defs", "if-then", "under-properties", "under-items", "repeated-id", "draft-4-id"])
def test_a_ref_that_loops_without_reaching_a_part_of_the_answer_is_refused(schema: dict[str, object]) -> None:
    # (jsonschema would follow it until Python's recursion limit, on every answer)
    with pytest.raises(InvalidJob, match="loops back") as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": schema}})
    assert caught.value.code == "invalid_schema"


def test_a_recursive_schema_that_descends_into_the_answer_is_accepted() -> None:
    tree = {"type": "object", "properties": {"name": {"type": "string"},
                                             "children": {"type": "array", "items": {"$ref": "#"}}}}
    assert parse_job({"messages": ASK, "quality": {"json_schema": tree}}).quality is not None
    assert quality.schema_error({"name": "a", "children": [{"name": "b", "children": []}]}, tree) is None
    assert quality.schema_error({"name": "a", "children": [{"name": 3}]}, tree) is not None


def test_an_extraction_schema_with_a_remote_ref_is_refused() -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_extraction_job({"document": "text", "schema": _with_ref("https://example.invalid/s.json")})
    assert caught.value.code == "remote_ref"


def test_a_remote_ref_through_a_worker_is_refused_and_nothing_is_fetched(
    worker: RunningWorker, schema_server: tuple[str, list[str]]
) -> None:
    url, seen = schema_server
    schema = _with_ref(f"{url}/schema.json")
    result = submit(ASK, app=worker.app, quality={"json_schema": schema}).result(timeout=30)
    assert not result.ok and result.error is not None
    assert result.error.code == "remote_ref"
    assert result.attempts == []
    failed = submit_extraction("Alice signed.", schema, app=worker.app).result(timeout=30)
    assert failed.error is not None and failed.error.code == "remote_ref"
    assert seen == []


@pytest.mark.parametrize("field", ["must_match", "must_not_match"])
def test_a_pattern_re2_refuses_fails_the_job_with_invalid_pattern(field: str) -> None:
    for pattern in (r"(a)\1", r"(?<=a)b", "a{1000}{1000}", "("):
        with pytest.raises(InvalidJob) as caught:
            parse_job({"messages": ASK, "quality": {field: [pattern]}})
        assert caught.value.code == "invalid_pattern", pattern


def test_a_schema_pattern_re2_refuses_fails_the_job_with_invalid_pattern() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": r"(x)\1"}}}
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": schema}})
    assert caught.value.code == "invalid_pattern"
    keyed = {"type": "object", "patternProperties": {"(?=x)": {"type": "string"}}}
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": keyed}})
    assert caught.value.code == "invalid_pattern"


def test_catastrophic_patterns_end_as_verdicts_at_once() -> None:
    started = time.monotonic()
    spec = parse_job({"messages": ASK, "quality": {"must_match": [CATASTROPHIC], "min_chars": 0}}).quality
    assert quality.check(EVIL_TEXT, spec).check == "must_match"
    spec = parse_job({"messages": ASK, "quality": {"must_not_match": [CATASTROPHIC]}}).quality
    assert quality.check(EVIL_TEXT + " " + EVIL_TEXT, spec).ok
    schema = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^" + CATASTROPHIC}},
              "patternProperties": {CATASTROPHIC: {"type": "integer"}}, "additionalProperties": False}
    assert quality.schema_error({"word": EVIL_TEXT}, schema) is not None
    assert quality.schema_error({EVIL_TEXT: 1, "word": "aaa"}, schema) is not None
    assert quality.schema_error({"word": "aaa", "aaa": 1}, schema) is None
    assert time.monotonic() - started < 2


def test_a_catastrophic_schema_pattern_through_a_worker_ends_as_a_quality_verdict(worker: RunningWorker) -> None:
    schema = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^" + CATASTROPHIC}},
              "required": ["word"]}
    # The simulated provider fills string fields with the last message's first word.
    ask = [{"role": "user", "content": f"{EVIL_TEXT} please"}]
    result = submit(ask, app=worker.app, quality={"json_schema": schema}).result(timeout=30)
    assert not result.ok and result.error is not None
    assert result.error.code == "quality"
    assert {e.check for e in result.escalations} == {"schema_mismatch"}


def test_unevaluated_properties_beside_pattern_properties_is_refused() -> None:
    schema = {"type": "object", "patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": ASK, "quality": {"json_schema": schema}})
    assert caught.value.code == "invalid_schema"
