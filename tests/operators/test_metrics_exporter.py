"""A real worker through an outage and a quality escalation; the exporter's sums match."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from operators.services import WorkerSpec, background_worker
from tests.operators.scrape import exporter, mixed_jobs, outage_and_refusals, sums, total, wait_flushed
from tests.support import RunningWorker, worker_env


def _check(samples: dict, expected: dict[str, float]) -> None:  # type: ignore[type-arg]
    assert total(samples, "tierline_jobs_total") == expected["jobs"]
    assert total(samples, "tierline_jobs_total", status="failed") == expected["failed"]
    assert total(samples, "tierline_attempts_total") == expected["attempts"]
    assert total(samples, "tierline_attempts_total", outcome="ok") == expected["ok_attempts"]
    assert total(samples, "tierline_fallbacks_total") == expected["fallbacks"]
    assert total(samples, "tierline_escalations_total") == expected["escalations"]
    tokens = "gen_ai_client_token_usage_sum"
    assert total(samples, tokens, gen_ai_token_type="input") == expected["tokens_in"]
    assert total(samples, tokens, gen_ai_token_type="output") == expected["tokens_out"]
    assert total(samples, "tierline_cost_usd_total") == pytest.approx(expected["cost"], rel=1e-9, abs=1e-12)
    assert total(samples, "gen_ai_client_operation_duration_seconds_count") == expected["attempts"]


def test_two_workers_counts_add_up_to_the_results(
    worker_factory: Callable[..., AbstractContextManager[RunningWorker]],
) -> None:
    # Given two worker processes on one Redis, small down and medium refusing
    with worker_factory(concurrency=2) as w:
        second = WorkerSpec(2, name=f"second-{w.name}", loglevel="INFO")
        with background_worker(w.app, worker_env(w.url, w.prefix, {}), second,
                               log_path=w.log_path.with_suffix(".second.log"), timeout_s=30):
            w.script(outage_and_refusals(time.time()))
            # When a mix of jobs runs
            handles = mixed_jobs(w, 16, "two")
            results = [h.result(timeout=60) for h in handles]
            served = w.app.control.inspect(timeout=2).stats() or {}
        # Then both workers ran jobs, and the scraped series equal the sums over the results
        assert len(served) == 2 and all(s["total"] for s in served.values()), served
        expected = sums(results)
        assert expected["fallbacks"] >= 1 and expected["escalations"] >= 1 and expected["failed"] == 1
        with exporter(w.url, w.prefix) as url:
            samples = wait_flushed(url, "tierline_jobs_total", expected["jobs"])
            _check(samples, expected)
            assert total(samples, "tierline_jobs_total", status="failed", code="unknown_pinned_model") == 1
            assert total(samples, "tierline_escalations_total", from_tier="medium", to_tier="large",
                         check="refusal") == expected["escalations"]
            assert total(samples, "tierline_team_jobs_total", team="ops") == 1
            assert total(samples, "tierline_model_busy", model="mistral-small-latest") == 1
            assert total(samples, "tierline_busy_marks_total", model="mistral-small-latest") >= 1
            assert total(samples, "tierline_deliveries_total", delivery="1") >= expected["jobs"]
            assert total(samples, "tierline_routing_overhead_seconds_count") >= expected["jobs"]
            assert total(samples, "tierline_queue_depth", queue="conversations") == 0
