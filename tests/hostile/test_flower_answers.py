"""Answers that quote the conversation stay out of Flower and the task events, end to end.

A real worker calls Mistral's SDK at a loopback server whose answers quote the last
message and name the model; a job's `must_not_match` pattern, which quotes the
conversation too, rejects the small model's answer and the job escalates. Flower
(`tierline flower`, what docker-compose runs) and a raw event receiver watch it: both
see the result's summary (status, code, model, tier, tokens, cost), never a word of the
answer, the escalation reason or the conversation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.schemas import JobResult
from producers.client import submit
from tests.flower_view import get, running_flower, seen_by, task_view
from tests.llm_server import LLMServer
from tests.support import RunningWorker, task_events
from tests.test_worker_real_providers import CATALOG, MISTRAL_KEY, OPENAI_KEY, real_env
from worker.shown_results import summary

WorkerFactory = Callable[..., AbstractContextManager[RunningWorker]]
PRIVATE = "Zq4471private"
ASK = [{"role": "user", "content": f"{PRIVATE} is the patient's record number, please confirm it."}]
# The loopback server answers "Answer from <model> over loopback: <the message's first words>."
SMALL_ANSWER = f"mistral-small-latest over loopback: {PRIVATE}"
ANY_ANSWER = f"over loopback: {PRIVATE}"


@pytest.fixture(scope="module")
def loopback_worker(
    worker_factory: WorkerFactory, llm_server: LLMServer, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWorker]:
    catalog = tmp_path_factory.mktemp("catalog") / "mixed.toml"
    Path(catalog).write_text(CATALOG)
    env = real_env(llm_server, catalog, MISTRAL_API_KEY=MISTRAL_KEY, OPENAI_API_KEY=OPENAI_KEY)
    with worker_factory(env=env) as running:
        yield running


@pytest.fixture(scope="module")
def flower(loopback_worker: RunningWorker) -> Iterator[str]:
    with running_flower(loopback_worker) as url:
        seen_by(loopback_worker, url, [{"role": "user", "content": "warm-up"}])  # Flower listens now
        yield url


@pytest.fixture(autouse=True)
def answering(llm_server: LLMServer) -> None:
    """Every model answers normally (an earlier test may have told the server otherwise)."""
    llm_server.reset()


@dataclass(frozen=True)
class Watched:
    """A job's stored result, the event that ended its task, everything Flower and the
    event stream hold about it (as JSON text), and Flower's task view of it."""

    result: JobResult
    ended: dict[str, Any]
    shown: str
    view: dict[str, Any]


def _watched(worker: RunningWorker, flower: str, job_id: str, forbidden: str) -> Watched:
    """Run a job that must not match `forbidden`, watched by the event stream and Flower."""
    with task_events(worker.app) as events:
        result = submit(ASK, app=worker.app, job_id=job_id, quality={"must_not_match": [forbidden]}).result(timeout=60)
        ended = events.ended(job_id)
        deadline = time.monotonic() + 30
        while (view := task_view(flower, job_id)).get("state") not in ("SUCCESS", "FAILURE"):
            assert time.monotonic() < deadline, f"Flower never saw {job_id} finish: {view}"
            time.sleep(0.1)
    shown = json.dumps(events.about(job_id)) + json.dumps(view) + get(f"{flower}/api/tasks")[1].decode()
    return Watched(result, ended, shown, view)


def test_an_escalated_answer_quoting_the_conversation_shows_only_its_summary(
    loopback_worker: RunningWorker, flower: str,
) -> None:
    # Given a job whose small answer is rejected by a pattern quoting the conversation
    watched = _watched(loopback_worker, flower, "quoted-escalated", SMALL_ANSWER)
    # whose stored answer and escalation reason both quote it
    result = watched.result
    assert result.ok and result.tier == "large", result
    assert PRIVATE in (result.content or "")
    assert [e.check for e in result.escalations] == ["must_not_match"] and PRIVATE in result.escalations[0].reason
    # Then its task-succeeded event and Flower's task view carry the summary
    assert watched.ended["type"] == "task-succeeded"
    assert watched.ended["result"] == summary(result) == watched.view["result"]
    assert "status=succeeded code=None model=mistral-large-latest tier=large" in watched.view["result"]
    assert f"tokens={result.tokens_in}/{result.tokens_out}" in watched.view["result"]
    assert "escalations=1" in watched.view["result"]
    # and nothing about the task a word of the conversation
    assert PRIVATE not in watched.shown


def test_a_job_failed_by_quality_with_reasons_quoting_it_shows_no_answer_either(
    loopback_worker: RunningWorker, flower: str,
) -> None:
    # Given a job every answer of which the pattern rejects: it fails, its message quoting it
    watched = _watched(loopback_worker, flower, "quoted-failed", ANY_ANSWER)
    result = watched.result
    assert result.error is not None and result.error.code == "quality", result
    assert PRIVATE in result.error.message + "".join(e.reason for e in result.escalations)
    # Then Flower's view of it and every event about it leave the answer out
    assert PRIVATE not in watched.shown
