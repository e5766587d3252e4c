"""Submit jobs by task name and wait for their JobResults.

Only the broker and result URLs are needed; the worker's code and keys are not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from celery import Celery
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from contract import job_identity
from contract.codes import ErrorCode
from contract.names import TASK_COMPLETE, TASK_QUEUES
from contract.schemas import ErrorInfo, JobResult
from producers.settings import ProducerSettings, get_settings
from results import store_for, to_job_result

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
_TRACER = trace.get_tracer("tierline.producer")


def producer_app(settings: ProducerSettings | None = None) -> Celery:
    """A Celery app that only sends tasks and reads results (JSON only)."""
    settings = settings or get_settings()
    return producer_app_for(settings.broker, settings.results)


@lru_cache(maxsize=8)
def producer_app_for(broker: str, results: str) -> Celery:
    """The producer app for a broker URL and a result-backend URL ("" for none), one per pair."""
    app = Celery("tierline-producer", broker=broker, backend=results, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_accept_content=["json"], task_send_sent_event=True,
        broker_connection_retry_on_startup=True, redis_max_connections=64,
        broker_transport_options={"max_connections": 64},
        task_routes={task: {"queue": queue} for task, queue in TASK_QUEUES.items()},
    )
    if broker.split("://", 1)[0] in AMQP_SCHEMES:
        # The workers' queues are quorum queues: a queue this app declares first must be
        # one too, and a send returns once RabbitMQ has confirmed the message.
        app.conf.update(task_create_missing_queue_type="quorum", broker_transport_options={"confirm_publish": True})
    return app


class JobHandle:
    """A submitted job: its id, and its JobResult when the worker is done.

    fingerprint: of the payload this handle sent (None: a handle to someone's job by id).
    A stored result that answers another payload under the same id ends ``conflict``.
    """

    def __init__(self, job_id: str, app: Celery, *, fingerprint: str | None = None) -> None:
        self.id = job_id
        self._app = app
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait up to `timeout` seconds (None: forever); raise TimeoutError past it."""
        result = store_for(self._app.backend).wait(self.id, timeout).job_result(self.id)
        if None not in (self._fingerprint, result.fingerprint) and result.fingerprint != self._fingerprint:
            return JobResult(job_id=self.id, status="failed", fingerprint=self._fingerprint, error=ErrorInfo(
                code=ErrorCode.CONFLICT, message="this job id already holds the result of another payload; "
                "send the job under a new id"))
        return result

    def done(self) -> bool:
        return bool(store_for(self._app.backend).read([self.id]))


__all__ = ["JobHandle", "producer_app", "producer_app_for", "send_job", "submit", "summary", "to_job_result"]


def submit(
    messages: Iterable[Mapping[str, Any]],
    *,
    job_id: str | None = None,
    app: Celery | None = None,
    **options: Any,
) -> JobHandle:
    """Enqueue a conversation job; the worker validates it and routes it.

    messages: chat messages (``role``, ``content``). job_id: idempotency key, also the
    Celery task id (a new uuid when None). options: ``critical``, ``pin_model``,
    ``min_tier``, ``max_output_tokens``, ``temperature``, ``metadata``, ``policy``,
    ``quality``, ``tenant`` (namespaces the job id: the task id is
    ``tenant:<tenant>:<job_id>``, and two tenants never share a job or a result).
    """
    job = {"messages": list(messages), **options}
    if job_id is not None:
        job["job_id"] = job_id
    return send_job(job, app=app)


def summary(job_id: str, job: Mapping[str, Any]) -> str:
    """What Flower and the logs show of a job: id, message count, a token bound, no text
    (for a document: its size).

    The bound is the UTF-8 size plus 4 per message: no token is shorter than a byte.
    """
    document = job.get("document")
    if isinstance(document, str):
        return f"job={job_id} document chars={len(document)}"
    messages = job.get("messages")
    if not isinstance(messages, list):
        return f"job={job_id} messages=?"
    size = sum(len(str(m.get("content", "")).encode()) + 4 if isinstance(m, dict) else 4 for m in messages)
    return f"job={job_id} messages={len(messages)} tokens<={size}"


def job_handle(job_id: str, *, tenant: str | None = None, app: Celery | None = None) -> JobHandle:
    """A handle to the job `job_id` of `tenant` (None: no tenant) sent earlier, to read its result."""
    return JobHandle(job_identity.task_id(job_id, tenant), app or producer_app())


def send_job(
    job: Mapping[str, Any], *, app: Celery | None = None, task: str = TASK_COMPLETE, shown: str | None = None
) -> JobHandle:
    """Send a raw job payload by task name; Flower and logs see only a short summary (`shown`,
    or the message count and size bound). A ``tenant`` in the job namespaces its id."""
    app = app or producer_app()
    payload = dict(job)
    tenant = payload.get("tenant") if isinstance(payload.get("tenant"), str) else None
    task_id = job_identity.task_id(str(payload.get("job_id") or uuid.uuid4()), tenant)
    # The trace context rides in the message headers (W3C traceparent): the worker's
    # spans continue this one. A no-op unless the application installed an OTel SDK.
    with _TRACER.start_as_current_span(f"submit {task}", kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "celery", "messaging.operation.type": "send", "tierline.job_id": task_id}):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        app.send_task(task, kwargs={"job": payload}, task_id=task_id, argsrepr=shown or summary(task_id, payload),
                      kwargsrepr="{}", headers=headers)
    return JobHandle(task_id, app, fingerprint=job_identity.fingerprint(payload))
