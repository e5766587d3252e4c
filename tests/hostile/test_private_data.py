"""Private data: results shown as summaries, optional redaction, key-shaped text scrubbed."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from contract.names import chunk_id
from contract.schemas import JobResult
from producers.client import submit
from producers.extraction import submit_extraction
from results import store_for
from tests.support import RunningWorker, task_events
from tests.test_extraction_batch import document, small_context_catalog
from worker import redaction
from worker.providers.http_errors import detail
from worker.providers.simulated import Behaviour, Script
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


# Every string the simulated answer fills in is a word of the document's (the chunk's) start.
NAMED = {"type": "object", "required": ["parties"],
         "properties": {"parties": {"type": "array", "items": {"type": "string", "pattern": "@|private"}}}}


def named_document(names: str, seed: int) -> str:
    """Twelve paragraphs of ~400 words, each opening with `names`: a document of several
    chunks on the small-context catalog, each chunk opening with a paragraph."""
    rng = random.Random(seed)
    return "\n\n".join(f"{names} " + document(rng, 400).replace("\n\n", " ") for _ in range(12))


def _small_contexts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    Path(catalog).write_text(small_context_catalog())
    return {"TIERLINE_CATALOG_PATH": str(catalog)}


@pytest.fixture(scope="module")
def chunking(worker_factory: WorkerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """A worker with 2K/4K/8K contexts: a document of a few thousand words has several chunks."""
    with worker_factory(env=_small_contexts(tmp_path_factory)) as running:
        yield running


@pytest.fixture(scope="module")
def redacting(worker_factory: WorkerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with worker_factory(env={"TIERLINE_REDACT_RESULTS": "true", **_small_contexts(tmp_path_factory)}) as running:
        yield running


def test_chunk_and_merge_events_carry_a_summary_not_the_answers(chunking: RunningWorker) -> None:
    chunking.script(Script())
    with task_events(chunking.app) as events:
        # Given a document of several chunks whose answers quote it
        result = submit_extraction(named_document("Zq4471private Yx9902private", 1), NAMED, app=chunking.app,
                                   policy="cascade", max_output_tokens=256, job_id="shown-doc").result(timeout=60)
        assert result.ok, result.error
        assert result.parsed == {"parties": ["Zq4471private", "Yx9902private"]} and (result.chunks or 0) > 1
        # When each chunk task and the merge step end
        ids = [chunk_id("shown-doc", i) for i in range(result.chunks or 0)] + ["shown-doc"]
        shown = {task_id: events.wait_for("task-succeeded", task_id)["result"] for task_id in ids}
    # Then each event carries the result's summary, and no event about them a word of the answers
    for task_id, line in shown.items():
        assert line.startswith(f"JobResult(job={task_id} status=succeeded code=None model=mistral-"), line
    assert "tokens=" in shown["shown-doc"] and "cost=" in shown["shown-doc"]
    about = json.dumps([e for task_id in ids for e in events.about(task_id)])
    assert "Zq4471" not in about and "Yx9902" not in about
    assert "Zq4471" not in chunking.log()  # nor Celery's log line of each task's return value


def test_an_escalated_one_chunk_document_shows_a_summary(chunking: RunningWorker) -> None:
    # Given a small document whose first answer is poor: its chunk goes one tier up as a chunk task
    chunking.script(Script(models={"mistral-small-latest": Behaviour(poor_rate=1.0, poor="broken_json")}))
    with task_events(chunking.app) as events:
        result = submit_extraction("Zq4471private Yx9902private signed the lease.", NAMED, app=chunking.app,
                                   job_id="shown-escalated").result(timeout=60)
        assert result.ok and result.tier == "medium" and len(result.escalations) == 1, result
        # Then the chunk task that ends it under the document's id shows its summary too
        line = events.wait_for("task-succeeded", "shown-escalated")["result"]
    assert line.startswith("JobResult(job=shown-escalated status=succeeded code=None model=mistral-medium-latest")
    assert "escalations=1" in line and "Zq4471" not in json.dumps(events.about("shown-escalated"))


def test_with_redaction_on_a_chunked_document_is_merged_whole_then_redacted(redacting: RunningWorker) -> None:
    # Given a document of several chunks, every chunk naming two people by their addresses
    text = named_document("jane.doe@example.org bob.smith@example.com", 2)
    # When it is extracted with redaction on (the schema wants an "@" in every item)
    result = submit_extraction(text, NAMED, app=redacting.app, policy="cascade", max_output_tokens=256,
                               job_id="redacted-doc").result(timeout=60)
    # Then the chunks merged on their real values (two people, each valid), and what is stored is redacted
    assert result.ok, result.error
    assert (result.chunks or 0) > 1
    assert result.parsed == {"parties": ["[email]", "[email]"]}
    assert "@" not in json.dumps(result.model_dump(mode="json"))
    # and the chunks' own, unredacted results were released once merged
    parts = [chunk_id("redacted-doc", i) for i in range(result.chunks or 0)]
    results = store_for(redacting.app.backend)
    assert results.read(parts) == {} and all(results.collected(p) for p in parts)


def test_with_redaction_on_an_escalated_one_chunk_document_is_redacted(redacting: RunningWorker) -> None:
    redacting.script(Script(models={"mistral-small-latest": Behaviour(poor_rate=1.0, poor="broken_json")}))
    try:
        result = submit_extraction("jane.doe@example.org bob.smith@example.com signed the lease.", NAMED,
                                   app=redacting.app).result(timeout=60)
    finally:
        redacting.script(Script())
    assert result.ok and len(result.escalations) == 1, result
    assert result.parsed == {"parties": ["[email]", "[email]"]}


def test_with_redaction_on_the_stored_result_carries_no_private_shapes(redacting: RunningWorker) -> None:
    schema = {"type": "object", "properties": {"contact": {"type": "string"}}, "required": ["contact"]}
    # The simulated answer fills `contact` with the first word of the message: an address.
    ask = [{"role": "user", "content": "jane.doe@example.org wrote to us, summarise."}]
    result = submit(ask, app=redacting.app, quality={"json_schema": schema}).result(timeout=30)
    assert result.ok, result.error
    assert result.parsed == {"contact": "[email]"}
    assert "jane.doe" not in (result.content or "")
