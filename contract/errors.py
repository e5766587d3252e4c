"""The root of tierline's error tree, the one error both sides raise (`InvalidJob`), and
`JobFailed`, the exception a failed job's task ends with (Celery state FAILURE).

The worker's provider, catalog and registry errors extend `TierlineError` in
`worker.errors`; the batch producer's in `producers.batch.errors`.
"""

from __future__ import annotations

from typing import Any

from contract.codes import ErrorCode


class TierlineError(Exception):
    """Base of every error tierline raises on purpose."""

    code = "error"


class InvalidJob(TierlineError):
    """The job itself is unusable; `code` is a stable machine-readable error code."""

    def __init__(self, message: str, *, code: str = ErrorCode.INVALID_JOB) -> None:
        super().__init__(message)
        self.code = code


class JobFailed(Exception):
    """Raised by a task whose job ended failed, so that Celery stores and shows FAILURE.

    Its arguments are (summary, the JobResult as a JSON dict): Celery's JSON exception
    serialisation stores both in the result backend, and the results interface rebuilds
    the JobResult from them (`results.base.failed_result`). Its str and repr, which the
    task-failed event, Flower, the log and the stored traceback show, are the summary
    alone: codes and names, never the answer.
    """

    def __init__(self, summary: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(summary, result or {})

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:
        return f"JobFailed({self.args[0]!r})"
