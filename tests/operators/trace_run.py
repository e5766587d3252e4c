"""Run one job through a real worker with the SDK's in-memory exporter; print its spans.

`python -m tests.operators.trace_run` with REDIS_URL and TIERLINE_KEY_PREFIX set: the
producer and a solo-pool Celery worker live in this one process so that one in-memory
exporter sees every span; the job goes through the real broker both times it is
delivered. Prints the finished spans as JSON lines (name, ids, parent, attributes).
"""

from __future__ import annotations

import json
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def main() -> int:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from celery.contrib.testing.worker import start_worker

    from producers.client import producer_app, submit
    from tests.operators.scrape import outage_and_refusals
    from worker.celery import app
    from worker.providers.simulated import publish_script
    from worker.settings import get_settings

    settings = get_settings()
    producer = producer_app(settings)
    publish_script(producer.backend.client, settings.keys.sim_script, outage_and_refusals(time.time()), ttl_s=600)
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=20):
        result = submit([{"role": "user", "content": "SECRET-TEXT where is my parcel?"}], app=producer,
                        job_id="traced-job").result(timeout=60)
    for span in exporter.get_finished_spans():
        sys.stdout.write(json.dumps({
            "name": span.name, "trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": dict(span.attributes or {}), "kind": span.kind.name,
        }) + "\n")
    sys.stdout.write(json.dumps({"result": result.model_dump(mode="json")}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
