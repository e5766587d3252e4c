"""Batch lines, job ids, the duplicate check and the output files, without a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.schemas import Attempt, ErrorInfo, JobResult
from producers.batch.census import take_census
from producers.batch.errors import CorruptOutput, DuplicateCustomIds
from producers.batch.files import OutputFiles, cut_torn_tail
from producers.batch.identity import job_id
from producers.batch.lines import BadLine, BatchLine, parse_line
from producers.batch.records import LineOutcome, output_record
from producers.batch.source import LineSource
from producers.batch.summary import BatchSummary, Price

HELLO = [{"role": "user", "content": "hello"}]


def openai_line(custom_id: str, **body: object) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"messages": HELLO, **body}})


def test_openai_body_maps_to_a_pinned_job_with_limits_and_json_checks() -> None:
    raw = openai_line("a", model="mistral-small-latest", max_tokens=50, temperature=0.2,
                      response_format={"type": "json_object"}, top_p=0.9, seed=3)

    line = parse_line(raw, 1)

    assert isinstance(line, BatchLine)
    assert line.custom_id == "a"
    assert line.job == {"messages": HELLO, "pin_model": "mistral-small-latest", "max_output_tokens": 50,
                        "temperature": 0.2, "quality": {"json_output": True}}


def test_route_drops_the_model_pin_and_max_completion_tokens_wins() -> None:
    raw = openai_line("a", model="gpt-4o", max_tokens=50, max_completion_tokens=70)

    line = parse_line(raw, 1, route=True)

    assert isinstance(line, BatchLine)
    assert "pin_model" not in line.job
    assert line.job["max_output_tokens"] == 70


def test_mistral_and_plain_lines_are_accepted_and_a_plain_line_gets_an_id_from_its_number() -> None:
    mistral = parse_line(json.dumps({"custom_id": "m1", "body": {"messages": HELLO, "max_tokens": 9}}), 1)
    plain = parse_line(json.dumps({"messages": HELLO, "critical": True}), 7)

    assert isinstance(mistral, BatchLine) and mistral.job["max_output_tokens"] == 9
    assert isinstance(plain, BatchLine) and plain.custom_id == "line-7" and plain.job["critical"] is True


def test_text_content_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]
    line = parse_line(json.dumps({"messages": [{"role": "user", "content": parts}]}), 1)

    assert isinstance(line, BatchLine)
    assert line.job["messages"] == HELLO


@pytest.mark.parametrize(("raw", "code", "custom_id"), [
    ("{not json", "invalid_json", None),
    ("[1, 2]", "invalid_json", None),
    (json.dumps({"custom_id": "x", "body": {"max_tokens": 5}}), "missing_messages", "x"),
    (json.dumps({"custom_id": "x", "body": {"messages": [{"role": "wizard", "content": "hi"}]}}),
     "unknown_role", "x"),
    (json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {"input": "a"}}),
     "wrong_endpoint", "x"),
    (json.dumps({"body": {"messages": HELLO}}), "invalid_custom_id", None),
    (json.dumps({"custom_id": "x", "body": {"messages": []}}), "empty_messages", "x"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
     "non_text_content", "line-1"),
])
def test_bad_lines_say_why_with_a_stable_code(raw: str, code: str, custom_id: str | None) -> None:
    line = parse_line(raw, 1)

    assert isinstance(line, BadLine)
    assert (line.error.code, line.custom_id, line.number) == (code, custom_id, 1)


def test_job_ids_are_stable_and_change_with_scope_custom_id_or_request() -> None:
    job = {"messages": HELLO}

    assert job_id("s", "a", job) == job_id("s", "a", {"messages": HELLO})
    assert len({job_id("s", "a", job), job_id("t", "a", job), job_id("s", "b", job),
                job_id("s", "a", {"messages": HELLO, "critical": True})}) == 4


def test_duplicate_custom_ids_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([openai_line("a"), openai_line("b"), "", openai_line("a"), openai_line("a")]))

    with pytest.raises(DuplicateCustomIds) as caught, LineSource(path) as source:
        take_census(source)

    assert caught.value.duplicates == {"a": [1, 4, 5]}
    assert "lines 1, 4, 5" in str(caught.value)


def test_census_counts_lines_and_those_already_done(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([openai_line("a"), "oops", openai_line("b"), ""]) + "\n")

    with LineSource(path) as source:
        census = take_census(source, skip={"b"})

    assert (census.total, census.skipped) == (3, 1)


def test_a_torn_last_line_is_cut_and_complete_lines_mark_their_custom_ids_done(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    whole = json.dumps({"id": "batch_req_1", "custom_id": "a", "response": None, "error": None})
    out.write_text(whole + "\n" + '{"id": "batch_req_2", "custom_id": "b", "resp')

    with OutputFiles(out, tmp_path / "err.jsonl") as files:
        assert files.resumed == 1
        assert "a" in files.done and "b" not in files.done

    assert out.read_text() == whole + "\n"


def test_cut_torn_tail_handles_no_newline_at_all_and_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 200_000)
    assert cut_torn_tail(path) == 200_000 and path.read_bytes() == b""
    path.write_bytes(b"a" * 100_000 + b"\n" + b"b" * 100_000)
    assert cut_torn_tail(path) == 100_000 and path.read_bytes() == b"a" * 100_000 + b"\n"


def test_a_corrupt_line_before_the_end_stops_the_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('garbage\n{"custom_id": "a"}\n')

    with pytest.raises(CorruptOutput, match=r"out.jsonl:1"):
        OutputFiles(out, tmp_path / "err.jsonl")


def test_failed_lines_go_to_both_files_once_and_bad_lines_only_to_errors(tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    failed = JobResult(job_id="j1", status="failed", error=ErrorInfo(code="budget_exhausted", message="m"))
    outcomes = [
        LineOutcome(line=1, custom_id="a", job_id="j1", result=failed),
        LineOutcome(line=2, custom_id=None, invalid=ErrorInfo(code="invalid_json", message="m")),
    ]
    for _ in range(2):  # a second run skips what OUT holds and meets the bad line again
        with OutputFiles(out, err) as files:
            for outcome in outcomes:
                if outcome.custom_id not in files.done:
                    files.write(outcome)

    errors = [json.loads(x) for x in err.read_text().splitlines()]
    assert [(e["custom_id"], e["line"], e["error"]["code"]) for e in errors] == [
        ("a", 1, "budget_exhausted"), (None, 2, "invalid_json")]
    assert [json.loads(x)["custom_id"] for x in out.read_text().splitlines()] == ["a"]


def test_a_succeeded_line_has_the_openai_batch_output_shape_and_routing_fields() -> None:
    result = JobResult(job_id="j1", status="succeeded", content="hi", model="m", tier="small",
                       provider="simulated", tokens_in=3, tokens_out=2, cost_usd=0.5)

    record = output_record(LineOutcome(line=1, custom_id="a", job_id="j1", result=result), created=7)

    body = record["response"]["body"]
    assert record["custom_id"] == "a" and record["error"] is None
    assert record["response"]["status_code"] == 200
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hi"}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert body["created"] == 7 and body["object"] == "chat.completion"
    assert record["tierline"]["tier"] == "small" and record["tierline"]["cost_usd"] == 0.5


def test_the_all_large_comparison_prices_only_the_answer_that_was_used() -> None:
    # Given a line answered by medium after small's answer was rejected
    small = Attempt(model="s", tier="small", provider="p", outcome="ok", latency_ms=1, tokens_in=1000,
                    tokens_out=500, cost_usd=0.001, rejected="refusal")
    medium = Attempt(model="m", tier="medium", provider="p", outcome="ok", latency_ms=1, tokens_in=1000,
                     tokens_out=200, cost_usd=0.002, level=1)
    result = JobResult(job_id="j", status="succeeded", tier="medium", attempts=[small, medium],
                       tokens_in=2000, tokens_out=700, cost_usd=0.003)
    summary = BatchSummary(large=Price("large", usd_per_mtok_in=2.0, usd_per_mtok_out=6.0))
    # When it is tallied
    summary.add(LineOutcome(line=1, custom_id="c", job_id="j", result=result))
    # Then all-large is one large call on medium's tokens, not on both generations'
    assert summary.large_cost_usd == pytest.approx((1000 * 2.0 + 200 * 6.0) / 1e6)
    assert summary.cost_usd == pytest.approx(0.003)
