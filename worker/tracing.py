"""OpenTelemetry spans for a job's life in a worker: each delivery, each model call.

The producer's `submit` span travels in the task message's headers (W3C
``traceparent``), each delivery continues it, and a re-queue to a stronger tier carries
the delivery's context on, so one trace shows the job's whole life. Each model call is a
span with the GenAI attributes (operation, provider, model, tokens) and its outcome; no
span carries message text, answers or error messages, only codes.

Off by default, and then free: until a tracer provider is installed no span is made (the
API's no-op spans cost ~20 µs a job); a re-queue still passes on the trace headers its
message came with.
`configure_from_env` installs the SDK with an OTLP exporter when the standard variables
ask for one (``OTEL_TRACES_EXPORTER=otlp``, or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``);
the exporter reads the rest of ``OTEL_*`` (headers, protocol, service name) itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from contract.schemas import Attempt, JobResult

log = logging.getLogger(__name__)
TRACER_NAME = "tierline"
# A proxy: it follows the provider configure_from_env (or a test) installs later.
_TRACER = trace.get_tracer(TRACER_NAME)
_installed = False
_looked_at = -1.0  # when this process last asked OpenTelemetry (time.monotonic)


def tracing_on() -> bool:
    """True once a tracer provider is installed in this process (OpenTelemetry sets one once).

    Until then OpenTelemetry is asked at most once a second (its question reads the
    environment): a provider installed by other code counts from then on.
    """
    global _installed, _looked_at
    if not _installed and time.monotonic() - _looked_at >= 1.0:
        _looked_at = time.monotonic()
        _installed = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _installed


def tracing_requested(env: Mapping[str, str]) -> bool:
    """True when the standard OTEL_* variables ask for exported traces."""
    exporters = env.get("OTEL_TRACES_EXPORTER", "").lower()
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or exporters == "none":
        return False
    return "otlp" in exporters or bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure_from_env() -> bool:
    """Install the SDK and an OTLP exporter in this process if OTEL_* asks; call after fork."""
    if not tracing_requested(os.environ):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
        "OTEL_SERVICE_NAME", "tierline-worker")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    global _installed
    _installed = True
    log.info("tracing on: spans go to the OTLP exporter")
    return True


def shutdown() -> None:
    """Flush spans still buffered (the process is ending)."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "shutdown", None)
    if callable(flush):
        flush()


class _RequestGetter(Getter[Any]):
    """Reads propagation headers from a Celery task request (custom headers are attributes)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        if value is None and isinstance(getattr(carrier, "headers", None), dict):
            value = carrier.headers.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        headers = getattr(carrier, "headers", None)
        return list(headers) if isinstance(headers, dict) else []


@contextmanager
def delivery_span(request: Any, *, task: str, job_id: str, level: int) -> Iterator[Span]:
    """The span of one delivery of a job, continuing the trace its message carries."""
    if not tracing_on():
        yield trace.INVALID_SPAN
        return
    parent = propagate.extract(request, getter=_RequestGetter())
    # A re-queue ends the delivery with Celery's Ignore, a failed job with JobFailed:
    # neither is an error of the span (describe_result says how the job ended).
    with _TRACER.start_as_current_span(f"deliver {task}", context=parent, kind=SpanKind.CONSUMER, attributes={
        "messaging.system": "celery", "messaging.operation.type": "process", "tierline.job_id": job_id,
        "tierline.level": level,
    }, record_exception=False, set_status_on_exception=False) as span:
        yield span


def context_headers(request: Any) -> dict[str, str]:
    """The trace context for a re-queue's message: the current span's, or when this delivery
    has none (tracing off here) the propagation headers the delivered message (`request`)
    came with (traceparent, tracestate, baggage: the configured propagators' fields)."""
    if tracing_on() and trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier
    getter = _RequestGetter()
    fields = propagate.get_global_textmap().fields
    return {key: found[0] for key in sorted(fields) if (found := getter.get(request, key))}


@contextmanager
def attempt_span(*, model: str, provider: str, tier: str) -> Iterator[Span]:
    """The span of one model call (GenAI client span: ``chat <model>``)."""
    if not tracing_on():
        yield trace.INVALID_SPAN
        return
    with _TRACER.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "tierline.tier": tier,
    }) as span:
        yield span


def describe_attempt(span: Span, attempt: Attempt) -> None:
    """Put what one call did on its span: outcome, tokens, cost, the error's code (no text)."""
    if not span.is_recording():
        return
    span.set_attribute("tierline.outcome", attempt.outcome)
    if attempt.outcome == "ok":
        span.set_attribute("gen_ai.response.model", attempt.model)
        span.set_attribute("gen_ai.usage.input_tokens", attempt.tokens_in)
        span.set_attribute("gen_ai.usage.output_tokens", attempt.tokens_out)
        span.set_attribute("tierline.cost_usd", attempt.cost_usd)
        return
    span.set_attribute("error.type", attempt.error_code or attempt.outcome)
    span.set_status(Status(StatusCode.ERROR))


def describe_result(span: Span, result: JobResult) -> None:
    """Put how a job ended on its last delivery's span (codes and names, no text)."""
    if not span.is_recording():
        return
    span.set_attribute("tierline.status", result.status)
    span.set_attribute("tierline.attempts", len(result.attempts))
    span.set_attribute("tierline.escalations", len(result.escalations))
    if result.tier:
        span.set_attribute("tierline.tier", result.tier)
    if result.error is not None:
        span.set_attribute("error.type", result.error.code)
        span.set_status(Status(StatusCode.ERROR))
