"""The project's one error tree.

```
TierlineError
├─ ProviderError (.provider, .model)
│  ├─ TransientError: RateLimited(.retry_after_s), ProviderTimeout, ProviderUnavailable,
│  │                  MalformedResponse
│  ├─ ConfigurationError: AuthenticationFailed, UnknownModel
│  └─ BadRequest: ContextTooLong, InvalidRequest
├─ CatalogError
│  └─ OverlayError (a live change that would make the catalog invalid)
├─ SchemaRegistryError
├─ RedisAway (Redis stayed unreachable past a job's time: the job ends `out_of_time`)
└─ InvalidJob (.code)
```

`TierlineError` and `InvalidJob` belong to the contract (`contract.errors`): producers
raise and catch them too. They are re-exported here so the tree reads in one place.

The fallback loop catches exactly the kinds it handles: TransientError and
ConfigurationError move on to the next candidate, BadRequest ends the job. A poor
answer and a spent attempt budget are not errors here but decisions the router returns
(`Escalate`, or a failed JobResult with code ``quality`` / ``budget_exhausted``).
Messages never carry a key, a token or a prompt.
"""

from __future__ import annotations

from contract.codes import ErrorCode, FailureKind
from contract.errors import InvalidJob, TierlineError

__all__ = [
    "AuthenticationFailed", "BadRequest", "CatalogError", "ConfigurationError", "ContextTooLong",
    "InvalidJob", "InvalidRequest", "MalformedResponse", "ProviderError", "ProviderTimeout",
    "ProviderUnavailable", "RateLimited", "RedisAway", "SchemaRegistryError", "TierlineError",
    "TransientError", "UnknownModel",
]


class ProviderError(TierlineError):
    """A model call failed; `kind` names the family for results and metrics."""

    kind = "provider"
    code = "provider_error"

    def __init__(self, message: str, *, provider: str, model: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model


class TransientError(ProviderError):
    kind = FailureKind.TRANSIENT
    code = ErrorCode.TRANSIENT


class RateLimited(TransientError):
    code = ErrorCode.RATE_LIMITED

    def __init__(
        self, message: str, *, provider: str, model: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.retry_after_s = retry_after_s


class ProviderTimeout(TransientError):
    code = ErrorCode.PROVIDER_TIMEOUT


class ProviderUnavailable(TransientError):
    code = ErrorCode.UNAVAILABLE


class MalformedResponse(TransientError):
    code = ErrorCode.MALFORMED_RESPONSE


class ConfigurationError(ProviderError):
    kind = FailureKind.CONFIGURATION
    code = ErrorCode.CONFIGURATION


class AuthenticationFailed(ConfigurationError):
    code = ErrorCode.AUTHENTICATION_FAILED


class UnknownModel(ConfigurationError):
    code = ErrorCode.UNKNOWN_MODEL


class BadRequest(ProviderError):
    kind = FailureKind.BAD_REQUEST
    code = ErrorCode.BAD_REQUEST


class ContextTooLong(BadRequest):
    code = ErrorCode.CONTEXT_TOO_LONG


class InvalidRequest(BadRequest):
    code = ErrorCode.INVALID_REQUEST


class CatalogError(TierlineError):
    """The tier catalog file is invalid; the message names the line and the problem."""

    code = "catalog_invalid"


class OverlayError(CatalogError):
    """A live change (drain, threshold, weights, limit, ...) refused: the message says why."""

    code = "overlay_invalid"


class SchemaRegistryError(TierlineError):
    """A ``TIERLINE_SCHEMAS`` entry cannot be imported as a pydantic model."""

    code = "schemas_invalid"


class RedisAway(TierlineError):
    """Redis (routing state, results or broker), or a RabbitMQ broker, stayed unreachable
    until the job's deadline, while a step that cannot go on without it waited
    (`worker.redis_wait`)."""

    code = ErrorCode.OUT_OF_TIME
