"""Extraction through a real worker: documents bigger than a context are chunked and merged."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import jsonschema
import pytest
from celery.exceptions import ChordError

from contract.names import QUEUE_EXTRACTION, TASK_EXTRACT_MERGE
from contract.schemas import JobResult
from producers import submit_extraction
from results import store_for
from tests.support import RunningWorker
from worker.catalog import load_catalog, parse_catalog
from worker.merge import normal_key
from worker.providers.simulated import Behaviour, Script
from worker.tokens import TokenCounter

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"

CONTRACT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "parties": {"type": "array", "items": {"type": "string"}},
        "amount": {"type": "number"},
        "signed": {"type": "boolean"},
    },
    "required": ["title", "parties", "amount", "signed"],
}
# A nested object with no merge rule: fine in one chunk, unmergeable across several.
NESTED = {
    "type": "object",
    "properties": {"seller": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "required": ["seller"],
}
ANNOTATED = {
    "type": "object",
    "properties": {
        "seller": {"type": "object", "x-merge": "first", "properties": {"name": {"type": "string"}}},
        "clauses": {"type": "array", "x-merge": "concat", "items": {"type": "string"}},
    },
    "required": ["seller", "clauses"],
}



def small_context_catalog() -> str:
    """The default catalog with contexts of 2K / 4K / 8K and thresholds of 1K / 3K tokens,
    so that chunking happens with small, fast documents."""
    tiers = load_catalog().model_dump(mode="json")["tiers"]
    for tier, context, bound in zip(tiers, (2048, 4096, 8192), (1000, 3000, None), strict=True):
        tier["max_tokens"] = bound
        for model in tier["models"]:
            model["context_tokens"] = context
    return f"tiers = {_toml(tiers)}\n"


def _toml(value: object) -> str:
    """`value` as a TOML inline value (None-valued keys left out)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


WORDS = ("supplier buyer contract clause delivery invoice payment warranty penalty schedule "
         "amount party signed term notice law court Lyon München 東京").split()


def document(rng: random.Random, words: int) -> str:
    paragraphs = []
    while words > 0:
        size = min(words, rng.randint(30, 150))
        paragraphs.append(" ".join(rng.choice(WORDS) for _ in range(size)) + ".")
        words -= size
    return "\n\n".join(paragraphs)


@pytest.fixture(scope="module")
def small_contexts(worker_factory: WorkerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    Path(catalog).write_text(small_context_catalog())
    with worker_factory(env={"TIERLINE_CATALOG_PATH": str(catalog)}) as running:
        yield running


def test_the_test_catalog_has_small_contexts() -> None:
    catalog = parse_catalog(small_context_catalog())
    assert [m.context_tokens for t in catalog.tiers for m in t.models][:1] == [2048]
    assert catalog.tiers[-1].models[0].context_tokens == 8192


def test_a_batch_of_50_documents_ends_with_one_valid_json_or_a_clear_error_each(
    small_contexts: RunningWorker,
) -> None:
    # Given 50 documents from 40 to ~12,000 tokens (contexts: 2K, 4K, 8K), a small model that breaks its JSON a
    # third of the time, and a few big documents whose schema cannot merge
    small_contexts.script(Script(models={SMALL: Behaviour(poor_rate=0.35, poor="broken_json")}))
    rng = random.Random(4)
    counter = TokenCounter()
    jobs = []
    for i in range(50):
        text = document(rng, rng.choice([40, 300, 900, 1_800, 4_000, 7_000, 12_000]))
        schema = NESTED if i % 10 == 9 else CONTRACT
        policy = "cascade" if i % 2 else "tokens"
        jobs.append((text, schema, policy, counter.text(text)))
    # When they are submitted together
    handles = [submit_extraction(text, schema, app=small_contexts.app, policy=policy, max_output_tokens=256,
                                 job_id=f"doc-{i}") for i, (text, schema, policy, _) in enumerate(jobs)]
    results = [h.result(timeout=60) for h in handles]
    # Then each ends as one valid JSON, or as a clear error
    outcomes: Counter[str] = Counter()
    for (_, schema, policy, tokens), result in zip(jobs, results, strict=True):
        assert result.job_id.startswith("doc-")
        outcomes[result.error.code if result.error else "ok"] += 1
        if result.ok:
            jsonschema.validate(result.parsed, schema)
            assert_merged_by_the_schema_rules(result, schema)
        else:
            assert schema is NESTED and result.chunks and result.chunks > 1, result.error
            assert result.error is not None and result.error.code == "unmergeable_schema"
            assert "'seller' (object) has no merge rule" in result.error.message
        if tokens > 8192 or policy == "cascade" and tokens > 2048:
            assert result.chunks and result.chunks > 1
    assert outcomes["ok"] >= 44 and set(outcomes) <= {"ok", "unmergeable_schema"}
    chunked = [r for r in results if r.ok and (r.chunks or 0) > 1]
    assert len(chunked) >= 12
    assert sum(len(r.escalations) for r in results) > 0
    assert all(e.check == "invalid_json" and e.reason.startswith(("chunk", "document"))
               for r in results for e in r.escalations)


def assert_merged_by_the_schema_rules(result: JobResult, schema: dict) -> None:
    """The simulator answers two list items per chunk: the merge keeps each distinct one once."""
    generations = [a for a in result.attempts if a.outcome == "ok"]
    assert len(generations) == (result.chunks or 0) + len(result.escalations)
    assert len([a for a in generations if a.rejected is None]) == result.chunks
    if schema is CONTRACT:
        parties = result.parsed["parties"]
        assert 1 <= len(parties) <= 2 * (result.chunks or 0)
        if (result.chunks or 0) > 1:  # one chunk is its answer as it is, with nothing to merge
            assert len({normal_key(p) for p in parties}) == len(parties)
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.attempts))


def test_a_chunk_that_stays_poor_fails_the_document_with_reason_quality(small_contexts: RunningWorker) -> None:
    small_contexts.script(Script(default=Behaviour(poor_rate=1.0, poor="schema_mismatch")))
    text = document(random.Random(1), 3_000)
    result = submit_extraction(text, CONTRACT, app=small_contexts.app, policy="cascade",
                               max_output_tokens=256).result(timeout=30)
    # Then every chunk escalated on its own, up to the strongest tier, and the document
    # fails naming its first chunk
    assert result.error is not None and result.error.code == "quality"
    assert result.error.message.startswith("schema_mismatch: chunk 1/"), result.error.message
    assert result.content == '{"unexpected": true}'
    chunks = result.chunks or 0
    assert chunks > 1
    for index in range(chunks):
        own = [e for e in result.escalations if e.reason.startswith(f"chunk {index + 1}/")]
        assert [e.to_tier for e in own] == ["medium", "large", None]
    assert {a.chunk for a in result.attempts} == set(range(chunks))



def test_a_chunk_that_escalates_leaves_its_sibling_chunks_on_their_own_tier(small_contexts: RunningWorker) -> None:
    # Given a small model that breaks its JSON for about half the prompts (drawn per chunk)
    small_contexts.script(Script(models={SMALL: Behaviour(poor_rate=0.5, poor="broken_json")}))
    text = document(random.Random(9), 5_000)
    # When a document of several chunks is extracted cheapest-first
    result = submit_extraction(text, CONTRACT, app=small_contexts.app, policy="cascade",
                               max_output_tokens=256).result(timeout=60)
    # Then the chunks whose answer was poor went one tier up, each on its own; the others
    # were answered once, on the small tier, at escalation level 0
    assert result.ok, result.error
    chunks = result.chunks or 0
    steps = {i: [(a.tier, a.level) for a in result.attempts if a.chunk == i] for i in range(chunks)}
    escalated = {i for i, own in steps.items() if len(own) > 1}
    assert escalated and escalated != set(range(chunks)), steps
    for i, own in steps.items():
        assert own == ([("small", 0), ("medium", 1)] if i in escalated else [("small", 0)]), (i, own)
    assert {e.reason.split(":")[0] for e in result.escalations} == {f"chunk {i + 1}/{chunks}" for i in escalated}

def test_annotated_nested_objects_merge_across_chunks(small_contexts: RunningWorker) -> None:
    small_contexts.script(Script())
    text = document(random.Random(2), 3_000)
    result = submit_extraction(text, ANNOTATED, app=small_contexts.app, policy="cascade",
                               max_output_tokens=256, instructions="Clauses verbatim.").result(timeout=30)
    assert result.ok, result.error
    assert result.chunks and result.chunks > 1
    assert set(result.parsed["seller"]) == {"name"}
    assert len(result.parsed["clauses"]) == 2 * result.chunks


def test_an_output_budget_that_leaves_no_room_fails_clearly(small_contexts: RunningWorker) -> None:
    result = submit_extraction("A short contract.", CONTRACT, app=small_contexts.app, pin_model=SMALL,
                               max_output_tokens=2_000).result(timeout=30)
    assert result.error is not None and result.error.code == "context_too_long"


def test_a_document_longer_than_the_small_context_on_the_default_catalog(worker: RunningWorker) -> None:
    # Given a document of more than 32K tokens (small's context) and a cheap-first policy
    worker.script(Script())
    text = document(random.Random(3), 34_000)
    assert TokenCounter().text(text) > 32_000
    cascade = submit_extraction(text, CONTRACT, app=worker.app, policy="cascade").result(timeout=30)
    by_tokens = submit_extraction(text, CONTRACT, app=worker.app).result(timeout=30)
    # Then cascade splits it for small, and the tokens policy sends it whole to large
    assert cascade.ok and by_tokens.ok
    assert (cascade.tier, cascade.chunks) == ("small", 2)
    assert (by_tokens.tier, by_tokens.chunks) == ("large", 1)
    assert cascade.cost_usd < by_tokens.cost_usd
    assert 2 <= len(cascade.parsed["parties"]) <= 4


def test_a_merge_sent_again_leaves_the_documents_first_end_as_it_is(worker: RunningWorker) -> None:
    # Given two documents that already ended: one with Celery's own ChordError stored (its
    # merge could not be published), one whose result the producer collected
    backend = worker.app.backend
    backend.mark_as_failure("chord-failed", ChordError("Callback error: RedisAway('test')"))
    backend.store_result("collected-doc", {"job_id": "collected-doc", "status": "succeeded"}, "SUCCESS")
    store_for(backend).release(["collected-doc"])
    # When a copy of each document's merge arrives (a late chunk published it again)
    for job_id in ("chord-failed", "collected-doc"):
        worker.app.send_task(TASK_EXTRACT_MERGE, args=[[]], kwargs={"merge": {}}, task_id=job_id,
                             queue=QUEUE_EXTRACTION)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker.log().count("merge sent again job=") < 2:
        time.sleep(0.1)
    # Then neither copy runs (each says why), and nothing is stored over the first end
    log = worker.log()
    assert "merge sent again job=chord-failed" in log and "merge sent again job=collected-doc" in log, log[-3000:]
    assert backend.get_task_meta("chord-failed")["status"] == "FAILURE"
    assert "Callback error" in str(backend.get_task_meta("chord-failed")["result"])
    assert store_for(backend).read(["collected-doc"]) == {}
