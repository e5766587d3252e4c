"""What a task returns: its JobResult stored whole, and shown everywhere else as a summary.

Celery puts a repr of a task's return value in the `task-succeeded` event (Flower shows
it) and in its own log line. A `StoredResult` serialises to the whole JobResult for the
result backend (kombu's JSON encoder calls ``__json__``) and its repr is a summary:
status, code, model, tier, tokens and cost, never the answer, its parsed value, the
escalation reasons (which may quote the answer) or any message text.

`SummaryRequest` (the Celery request class of tierline's tasks) makes sure of it for
every path that sends `task-succeeded`: a result that did not come as a summary (Celery
reads one back from the backend after a lost worker, say) is replaced by a placeholder.

A failed job's task ends with `JobFailed` instead (`returned`): Celery stores FAILURE,
Flower lists the job under Failed, and the exception's only text is the same summary
(its code and, for an escalated job, the tiers it went through); the stored exception
carries the whole JobResult, which the results interface hands the producer unchanged.
A `task-failed` event shows that summary, or for a crash its exception's type alone,
never a traceback.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request

from contract.errors import JobFailed
from contract.schemas import ErrorInfo, JobResult
from worker import redaction

SUMMARY_PREFIX = "JobResult("
HIDDEN = "JobResult(stored; not shown)"
FAILED_PREFIX = f"JobFailed({SUMMARY_PREFIX!r}"[:-1]  # repr(JobFailed(summary)) starts so


def summary(result: JobResult) -> str:
    """The one line events, Flower and logs may show of `result`."""
    code = result.error.code if result.error is not None else None
    return (
        f"{SUMMARY_PREFIX}job={result.job_id} status={result.status} code={code} model={result.model} "
        f"tier={result.tier} tokens={result.tokens_in}/{result.tokens_out} cost={result.cost_usd:.6f} "
        f"attempts={len(result.attempts)} escalations={len(result.escalations)}{_path(result)})"
    )


def _path(result: JobResult) -> str:
    """The tiers an escalated job went through (`` escalated=small→medium``); "" for none."""
    if not result.escalations:
        return ""
    tiers = [e.from_tier for e in result.escalations] + [result.escalations[-1].to_tier or "-"]
    return " escalated=" + "→".join(tiers)


def returned(result: JobResult, *, redact: bool) -> StoredResult:
    """What a task returns for the job's final `result`: a succeeded job's `StoredResult`; a
    failed job raises `JobFailed` carrying it (Celery stores FAILURE, Flower lists it Failed)."""
    value = stored(result, redact=redact)
    if not result.ok:
        raise failure(value)
    return value


def failure(value: StoredResult | JobResult) -> JobFailed:
    """The `JobFailed` a failed job's task ends with: its summary, and the JobResult whole."""
    if isinstance(value, JobResult):
        value = StoredResult(value)
    return JobFailed(repr(value), value.__json__())


def stored(result: JobResult, *, redact: bool) -> StoredResult:
    """What a task returns for `result`; with `redact`, private-looking strings replaced first
    (the answer, its parsed value, escalation reasons and the error message)."""
    return StoredResult(redacted(result) if redact else result)


def redacted(result: JobResult) -> JobResult:
    """`result` with every text that may quote the conversation or the answer redacted."""
    error = result.error
    return result.model_copy(update={
        "content": redaction.redact(result.content) if result.content is not None else None,
        "parsed": redaction.redact_value(result.parsed),
        "error": ErrorInfo(code=error.code, message=redaction.redact(error.message)) if error else None,
        "escalations": [e.model_copy(update={"reason": redaction.redact(e.reason)}) for e in result.escalations],
    })


class StoredResult:
    """A task's return value: the JobResult's JSON for the backend, its summary for a repr."""

    __slots__ = ("_json", "_summary")

    def __init__(self, result: JobResult) -> None:
        self._json = result.model_dump(mode="json")
        self._summary = summary(result)

    def __json__(self) -> dict[str, Any]:
        return self._json

    def __repr__(self) -> str:
        return self._summary

    __str__ = __repr__


class SummaryRequest(Request):  # type: ignore[misc]  # Celery's Request is untyped
    """Celery's request, whose `task-succeeded` events carry only a result summary."""

    def send_event(self, type: str, **fields: Any) -> None:  # noqa: A002  (Celery's name)
        if type == "task-succeeded":
            shown = fields.get("result")
            if not (isinstance(shown, str) and shown.startswith(SUMMARY_PREFIX)):
                fields["result"] = HIDDEN
        elif type == "task-failed":
            # A failed job: its summary; any other exception (a crash) may quote its input.
            # A crash's message may quote its input: only its type is shown.
            shown = fields.get("exception")
            if not (isinstance(shown, str) and shown.startswith(FAILED_PREFIX)):
                fields["exception"] = f"{str(shown).partition('(')[0][:80]}(not shown)"
            fields["traceback"] = fields["exception"]
        super().send_event(type, **fields)
