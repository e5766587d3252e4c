"""Traces: one job that falls back once and escalates once is one trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT
from worker.tracing import tracing_requested


def test_a_job_that_falls_back_and_escalates_is_one_trace(idle_db_url: str) -> None:
    # Given a worker and a producer in one process, exporting to the SDK's in-memory exporter
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERLINE_", "OTEL_"))}
    env.update(REDIS_URL=idle_db_url, TIERLINE_KEY_PREFIX="trace:", TIERLINE_SIM_REFRESH_S="0",
               TIERLINE_BACKOFF_S="0", PYTHONPATH=str(ROOT))
    # When one job meets a small-tier outage and a refusing medium tier
    out = subprocess.run([sys.executable, "-m", "tests.operators.trace_run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    result = next(line["result"] for line in lines if "result" in line)
    spans = [line for line in lines if "name" in line]
    # Then it fell back once and escalated once, and one trace holds its whole life
    assert [a["outcome"] for a in result["attempts"]] == ["transient", "ok", "ok"]
    assert len(result["escalations"]) == 1 and result["tier"] == "large"
    assert len({s["trace_id"] for s in spans}) == 1
    names = sorted(s["name"] for s in spans)
    assert names == sorted(["submit tierline.complete", "deliver tierline.complete", "deliver tierline.complete",
                            "chat mistral-small-latest", "chat mistral-medium-latest", "chat mistral-large-latest"])
    by_id = {s["span_id"]: s for s in spans}
    submit = next(s for s in spans if s["name"].startswith("submit"))
    first, second = sorted((s for s in spans if s["name"].startswith("deliver")),
                           key=lambda s: s["attributes"]["tierline.level"])
    assert first["parent_id"] == submit["span_id"] and second["parent_id"] == first["span_id"]
    for span in spans:
        if span["name"].startswith("chat"):
            assert by_id[span["parent_id"]]["name"].startswith("deliver")
            assert span["attributes"]["gen_ai.request.model"] in span["name"]
    large = next(s for s in spans if s["name"] == "chat mistral-large-latest")["attributes"]
    assert large["gen_ai.usage.input_tokens"] == result["attempts"][2]["tokens_in"]
    small = next(s for s in spans if s["name"] == "chat mistral-small-latest")["attributes"]
    assert small["tierline.outcome"] == "transient" and small["error.type"]
    # and no span carries the conversation's text
    assert "SECRET-TEXT" not in json.dumps(spans)


def test_tracing_is_off_unless_otel_variables_ask() -> None:
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})


OFF_PROBE = """
from types import SimpleNamespace
from worker import tracing
message = SimpleNamespace(headers={}, traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
with tracing.delivery_span(message, task="tierline.complete", job_id="j", level=0) as span:
    with tracing.attempt_span(model="m", provider="p", tier="small") as call:
        print(tracing.tracing_on(), span.is_recording(), call.is_recording(), tracing.context_headers(message))
"""


def test_with_tracing_off_no_span_is_made_and_a_requeue_passes_the_trace_on() -> None:
    # Given a worker process with no tracer provider installed (no OTEL_* variables)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # When a delivery whose message carries a producer's traceparent makes a call and re-queues
    out = subprocess.run([sys.executable, "-c", OFF_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    # Then nothing records a span, and the re-queued message keeps the producer's trace
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ("False False False "
                                  "{'traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'}")
