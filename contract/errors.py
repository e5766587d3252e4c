"""The root of tierline's error tree and the one error both sides raise: `InvalidJob`.

The worker's provider, catalog and registry errors extend `TierlineError` in
`worker.errors`; the batch producer's in `producers.batch.errors`.
"""

from __future__ import annotations

from contract.codes import ErrorCode


class TierlineError(Exception):
    """Base of every error tierline raises on purpose."""

    code = "error"


class InvalidJob(TierlineError):
    """The job itself is unusable; `code` is a stable machine-readable error code."""

    def __init__(self, message: str, *, code: str = ErrorCode.INVALID_JOB) -> None:
        super().__init__(message)
        self.code = code
