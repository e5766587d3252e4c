"""Private data: results shown as summaries, optional redaction, key-shaped text scrubbed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from contract.schemas import JobResult
from producers.client import submit
from tests.support import RunningWorker
from worker import redaction
from worker.providers.http_errors import detail
from worker.shown_results import StoredResult, stored, summary

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
PRIVATE = (
    "Write to jane.doe@example.org or call +33 6 12 34 56 78; card 4111 1111 1111 1111; "
    "IBAN DE89 3704 0044 0532 0130 00; key sk-proj-abcdefghijklmnopqrstuv"
)


@pytest.mark.parametrize(("text", "label"), [
    ("mail jane.doe+news@example.co.uk now", "[email]"),
    ("call +1 (415) 555-0132 today", "[phone]"),
    ("card 4111-1111-1111-1111 ok", "[card]"),
    ("IBAN FR76 3000 6000 0112 3456 7890 189.", "[iban]"),
    ("key sk-ant-api03-abcdefghijklmnopqrstu here", "[key]"),
    ("AKIAABCDEFGHIJKLMNOP", "[key]"),
    ("Authorization: Bearer abcdefghijklmnop.qrstu", "[key]"),
])
def test_redact_replaces_each_private_shape(text: str, label: str) -> None:
    assert label in redaction.redact(text)


def test_redact_leaves_ordinary_text_and_numbers_alone() -> None:
    text = "Meeting on 2024-05-01 at 10:30, invoice 12345, total 1,234.56 EUR, clause 4.2."
    assert redaction.redact(text) == text
    assert redaction.redact("not a card: 1234 5678 9012 3456").count("[card]") == 0


def test_a_provider_error_body_is_scrubbed_of_anything_key_shaped() -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-other-tenant-0123456789abcdef0123. "
                                 "Token a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7 rejected."}}
    said = detail(body, secret="not-this-one")
    assert "0123456789abcdef" not in said and "a1B2c3D4" not in said
    assert said.count("[key]") == 2 and "Incorrect API key provided" in said


def test_a_stored_result_serialises_whole_and_shows_a_summary() -> None:
    import json

    from kombu.utils.json import dumps

    result = JobResult(job_id="j1", status="succeeded", content=PRIVATE, parsed={"p": PRIVATE}, model="m",
                       tier="small", tokens_in=3, tokens_out=4, cost_usd=0.5)
    value = stored(result, redact=False)
    assert json.loads(dumps(value)) == result.model_dump(mode="json")
    assert repr(value) == summary(result) and "jane" not in repr(value) and "status=succeeded" in repr(value)
    hidden = json.loads(dumps(stored(result, redact=True)))
    assert not {"jane", "4111", "sk-proj", "DE89"} & set(json.dumps(hidden).replace('"', " ").split())
    assert "[email]" in hidden["content"] and "[card]" in hidden["parsed"]["p"]
    assert isinstance(value, StoredResult)


@pytest.fixture(scope="module")
def redacting(worker_factory: WorkerFactory) -> Iterator[RunningWorker]:
    with worker_factory(env={"TIERLINE_REDACT_RESULTS": "true"}) as running:
        yield running


def test_with_redaction_on_the_stored_result_carries_no_private_shapes(redacting: RunningWorker) -> None:
    schema = {"type": "object", "properties": {"contact": {"type": "string"}}, "required": ["contact"]}
    # The simulated answer fills `contact` with the first word of the message: an address.
    ask = [{"role": "user", "content": "jane.doe@example.org wrote to us, summarise."}]
    result = submit(ask, app=redacting.app, quality={"json_schema": schema}).result(timeout=30)
    assert result.ok, result.error
    assert result.parsed == {"contact": "[email]"}
    assert "jane.doe" not in (result.content or "")
