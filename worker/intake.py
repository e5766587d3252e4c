"""Message intake: a task message Celery cannot turn into a task call is refused here.

Celery's own strategy trusts the envelope of a message: a JSON body that is not
``[args, kwargs, options]`` raises in the consumer and stops the worker, a message
without a task id makes the consumer restart forever, and a body that is not JSON (or
not JSON at all, such as pickle) is dropped without a result. tierline's tasks use
this strategy instead: it checks the envelope first, and a bad message is acknowledged
(never re-queued), logged without its body, and, when it names a job id, ends as one
failed JobResult (``malformed_message``) that the producer's handle returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from celery import Task, states
from celery.exceptions import TimeLimitExceeded
from celery.worker.strategy import default
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.message import Message
from pydantic import TypeAdapter

from contract.codes import KIND, ErrorCode
from contract.schemas import Attempt, ErrorInfo, Escalation, JobResult
from worker.settings import get_settings
from worker.shown_results import SummaryRequest, failure, stored

log = logging.getLogger(__name__)

ESCALATIONS = TypeAdapter(list[Escalation])

Handler = Callable[..., Any]


class IntakeTask(Task):  # type: ignore[misc]  # Celery's Task is untyped
    """The base of tierline's tasks: their messages go through `strategy`, their
    `task-succeeded` events carry a result summary (`worker.shown_results`), and a job
    the hard limit stops under prefork still ends as its own failed JobResult (`JobRequest`)."""

    Strategy = "worker.intake:strategy"
    Request = "worker.intake:JobRequest"


class JobRequest(SummaryRequest):
    """The request of a tierline task, in the worker's main process.

    Under prefork the hard limit kills the job's pool process, and Celery ends the task with
    a bare `TimeLimitExceeded` twice (billiard reports the job failed, then timed out): each
    time it stores the failure, and hands it to the task's chord, chain and errbacks. A
    producer waiting on the job may read the first; a chunk's chord fails the whole document
    with a `ChordError` and the merge never runs. Instead, the job's own failed JobResult,
    listing the attempts its journal recorded, ends the task once, as the task would have:
    a FAILURE carrying it (`worker.shown_results.failure`), or, for a part of a chord (a
    chunk of several), its value, which the merge reads like any failed chunk's
    (`tasks.chunks`). Celery's bare failures that follow are neither stored nor handed on.
    """

    _hard_limit_stored = False

    @property
    def store_errors(self) -> bool:
        return not self._hard_limit_stored and bool(super().store_errors)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = exc_info.exception
        self._store_hard_limit_result(exc.exc if isinstance(exc, ExceptionWithTraceback) else exc)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft:
            self._store_hard_limit_result(TimeLimitExceeded(timeout))
        super().on_timeout(soft, timeout)

    def _store_hard_limit_result(self, exc: BaseException) -> None:
        """Best effort: whatever goes wrong here, Celery's own handling still follows."""
        if not isinstance(exc, TimeLimitExceeded) or self._hard_limit_stored:
            return
        self._hard_limit_stored = True  # from here on Celery stores no bare failure
        try:
            # Unless the job stored its own result (and so answered its chord) just before
            # its process was stopped.
            if self.task.backend.get_task_meta(self.id).get("status") not in states.READY_STATES:
                self._end_as(hard_limit_result(self.id, self.kwargs))
        except Exception:
            self._hard_limit_stored = False  # then Celery's bare failure ends the job
            log.exception("hard time limit job=%s: its failed JobResult could not be stored", self.id)
            return
        self._handed_on()

    def _end_as(self, result: JobResult) -> None:
        """Store `result` as the task's end and hand it to its chord, chain and errbacks."""
        request = self._context
        if request.chord:  # a chunk of several: the merge reads its JobResult, failed or not
            self.task.backend.mark_as_done(self.id, stored(result, redact=False), request=request)
        else:  # FAILURE, like every failed job
            self.task.backend.mark_as_failure(self.id, failure(result), request=request)

    def _handed_on(self) -> None:
        """The task's end is stored and handed on: Celery's bare failures that follow (they
        take the same request) must not reach its chord, chain or errbacks a second time."""
        request = self._context
        request.chord = request.chain = request.errbacks = None


def hard_limit_result(job_id: str, kwargs: Any) -> JobResult:
    """The failed JobResult of a job whose process the hard limit stopped."""
    from worker.runtime import runtime  # the worker's main process builds it on first use

    attempts = _cut_by_hard_limit(runtime().inflight.journal(job_id))
    log.error("hard time limit job=%s attempts=%d: its process was stopped", job_id, len(attempts))
    carry = kwargs.get("carry") if isinstance(kwargs, dict) else None
    try:  # the message's own carry: only its escalations are taken, if they are well formed
        escalations = ESCALATIONS.validate_python(carry.get("escalations", []) if isinstance(carry, dict) else [])
    except ValueError:
        escalations = []
    return JobResult(
        job_id=job_id, status="failed", attempts=attempts, escalations=escalations,
        error=ErrorInfo(code=ErrorCode.OUT_OF_TIME, message="the job hit the hard time limit: its process was stopped"),
    )


def _cut_by_hard_limit(journal: list[Attempt]) -> list[Attempt]:
    """The journal's attempts, its call in flight (listed as stopped with its process, the
    cause unknown when the journal was written) listed as cut short by the hard limit."""
    if journal and journal[-1].outcome == "interrupted" and journal[-1].error_code == ErrorCode.PROCESS_STOPPED:
        cut = ErrorCode.HARD_TIME_LIMIT
        return [*journal[:-1], journal[-1].model_copy(update={"error_code": cut, "error_kind": KIND[cut]})]
    return journal


def strategy(task: Task, app: Any, consumer: Any, **kwargs: Any) -> Handler:
    """Celery's default strategy for `task`, behind a check of each message's envelope."""
    handle = default(task, app, consumer, **kwargs)
    errors = consumer.connection_errors
    max_bytes = get_settings().max_message_bytes

    def guarded(message: Message, body: object, ack: Any, reject: Any, callbacks: Any, **more: Any) -> Any:
        # `body` is None for protocol 2, whose body Celery decodes later, unchecked.
        refused = _refusal(message, max_bytes) if body is None else None
        if refused is None:
            return handle(message, body, ack, reject, callbacks, **more)
        refuse(task, message, refused[1], code=refused[0])
        ack(log, errors)
        return None

    return guarded


def _refusal(message: Message, max_bytes: int) -> tuple[ErrorCode, str] | None:
    """(code, problem) for a message that must not run, checked before its body is decoded."""
    size = len(message.body or b"")
    if size > max_bytes:
        return ErrorCode.MESSAGE_TOO_LARGE, (
            f"the task message is {size} bytes, over TIERLINE_MAX_MESSAGE_BYTES={max_bytes}")
    problem = envelope_problem(message)
    return None if problem is None else (ErrorCode.MALFORMED_MESSAGE, problem)


def envelope_problem(message: Message) -> str | None:
    """Why a protocol-2 task message cannot become a task call; None when it can."""
    job_id = message.headers.get("id")
    if not isinstance(job_id, str) or not job_id:
        return "the message has no task id"
    try:
        body = message.payload
    except ContentDisallowed:
        return f"content type {message.content_type!r} refused: task messages are JSON only"
    except DecodeError:
        return "the message body is not valid JSON"
    if not (
        isinstance(body, list | tuple) and len(body) == 3
        and isinstance(body[0], list | tuple) and isinstance(body[1], dict) and isinstance(body[2], dict)
    ):
        return "the message body is not a Celery task body [args, kwargs, options]"
    return None


def refuse(task: Task, message: Message, problem: str, *, code: ErrorCode = ErrorCode.MALFORMED_MESSAGE) -> None:
    """Log a refused message and store its job's failed JobResult (when it has an id).

    A result backend that cannot be written raises: the message is then not acknowledged,
    and comes back once Redis does, rather than end without a result.
    """
    job_id = message.headers.get("id")
    log.error("refused a task message job=%s task=%s code=%s: %s", job_id, task.name, code, problem)
    if isinstance(job_id, str) and job_id:
        error = ErrorInfo(code=code, message=problem)
        failed = JobResult(job_id=job_id, status="failed", error=error)
        task.backend.mark_as_failure(job_id, failure(failed))
