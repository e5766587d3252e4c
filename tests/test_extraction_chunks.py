"""A big document's chunks are tasks of their own: each under its own time limits, merged once."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from celery.result import AsyncResult

from contract.names import TASK_EXTRACT_CHUNK, chunk_id
from producers import submit_extraction
from results import fetch, store_for
from tests.support import RunningWorker
from tests.test_extraction_batch import CONTRACT, document, small_context_catalog
from worker.providers.simulated import Behaviour, Script

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
SOFT_LIMIT_S = 3.0
PARTIES = {"type": "object", "properties": {"parties": {"type": "array", "items": {"type": "string"}}},
           "required": ["parties"]}


@pytest.fixture(scope="module")
def short_limits(worker_factory: WorkerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """A worker with 2K/4K/8K contexts and a soft time limit of 3 s per task."""
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    Path(catalog).write_text(small_context_catalog())
    env = {"TIERLINE_CATALOG_PATH": str(catalog), "TIERLINE_SOFT_TIME_LIMIT_S": SOFT_LIMIT_S,
           "TIERLINE_HARD_TIME_LIMIT_S": SOFT_LIMIT_S + 5}
    with worker_factory(env=env) as running:
        yield running


def test_a_document_of_many_chunks_each_taking_most_of_the_soft_limit_succeeds(short_limits: RunningWorker) -> None:
    # Given calls of 2 s against a soft limit of 3 s, and a document of many chunks
    short_limits.script(Script(default=Behaviour(latency_ms=2_000)))
    text = document(random.Random(5), 9_000)
    # When it is extracted
    result = submit_extraction(text, CONTRACT, app=short_limits.app, policy="cascade", max_output_tokens=256,
                               job_id="long-contract").result(timeout=90)
    # Then it succeeds as one JobResult under its own id, each chunk called once in a task of its own
    assert result.ok, result.error
    assert result.job_id == "long-contract"
    chunks = result.chunks or 0
    assert chunks >= 5
    assert sorted(a.chunk for a in result.attempts) == list(range(chunks))
    assert all(a.latency_ms >= 1_900 for a in result.attempts)
    assert sum(a.latency_ms for a in result.attempts) / 1000 > 3 * SOFT_LIMIT_S  # never fits one task
    # and every chunk's result is stored under its own deterministic id
    stored = fetch(store_for(short_limits.app.backend), [chunk_id("long-contract", i) for i in range(chunks)])
    assert len(stored) == chunks and all(r.ok for r in stored.values())


def test_a_redelivered_chunk_returns_its_stored_result_without_calling_a_provider(
    short_limits: RunningWorker,
) -> None:
    # Given a chunked document, done
    short_limits.script(Script())
    text = document(random.Random(6), 5_000)
    done = submit_extraction(text, CONTRACT, app=short_limits.app, policy="cascade", max_output_tokens=256,
                             job_id="redelivered").result(timeout=60)
    assert done.ok and (done.chunks or 0) > 1
    first = fetch(store_for(short_limits.app.backend), [chunk_id("redelivered", 0)])[chunk_id("redelivered", 0)]
    # When every provider call now fails and the first chunk's message comes again
    short_limits.script(Script(default=Behaviour(error_rate=1.0)))
    again = {"document": "chunk text", "schema": CONTRACT, "chunk_index": 0, "chunk_total": done.chunks,
             "chunk_start": 0, "start_tier": 0, "policy": "cascade", "max_output_tokens": 256}
    short_limits.app.send_task(TASK_EXTRACT_CHUNK, kwargs={"job": again}, task_id=chunk_id("redelivered", 0))
    # Then it answers with the stored result: no provider was called (every call would fail)
    value = AsyncResult(chunk_id("redelivered", 0), app=short_limits.app).get(timeout=30)
    assert value["status"] == "succeeded" and value["content"] == first.content


def test_duplicates_across_chunks_are_kept_once_and_say_where_they_came_from(short_limits: RunningWorker) -> None:
    # Given a document whose every paragraph names the same two parties, spelled differently
    short_limits.script(Script())
    rng = random.Random(7)
    names = ["Acme Globex", "ACME globex", "acme  GLOBEX"]
    paragraphs = [f"{names[i % 3]} " + document(rng, 400).replace("\n\n", " ") for i in range(12)]
    text = "\n\n".join(paragraphs)
    # When it is extracted with provenance
    result = submit_extraction(text, PARTIES, app=short_limits.app, policy="cascade", max_output_tokens=256,
                               provenance=True).result(timeout=60)
    # Then each party is listed once, with a source in every chunk that named it
    assert result.ok, result.error
    assert (result.chunks or 0) > 2
    assert result.parsed == {"parties": ["Acme", "Globex"]}
    assert result.sources is not None
    acme = result.sources["parties"][0]
    assert sorted({s["chunk"] for s in acme}) == list(range(result.chunks or 0))
    assert all(s["exact"] and text[s["start"]:s["end"]].casefold() == "acme" for s in acme)


def test_a_chunk_that_fails_fails_the_document_naming_the_chunk(short_limits: RunningWorker) -> None:
    # Given calls slower than the soft limit allows
    short_limits.script(Script(default=Behaviour(latency_ms=20_000)))
    text = document(random.Random(8), 4_000)
    result = submit_extraction(text, CONTRACT, app=short_limits.app, policy="cascade",
                               max_output_tokens=256).result(timeout=60)
    assert result.error is not None and result.error.code == "out_of_time"
    assert result.error.message.startswith("chunk 1/"), result.error.message
    assert (result.chunks or 0) > 1 and result.attempts
