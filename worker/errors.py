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

from contract.errors import InvalidJob, TierlineError

__all__ = [
    "AuthenticationFailed", "BadRequest", "CatalogError", "ConfigurationError", "ContextTooLong",
    "InvalidJob", "InvalidRequest", "MalformedResponse", "ProviderError", "ProviderTimeout",
    "ProviderUnavailable", "RateLimited", "SchemaRegistryError", "TierlineError", "TransientError",
    "UnknownModel",
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
    kind = "transient"
    code = "transient"


class RateLimited(TransientError):
    code = "rate_limited"

    def __init__(
        self, message: str, *, provider: str, model: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.retry_after_s = retry_after_s


class ProviderTimeout(TransientError):
    code = "timeout"


class ProviderUnavailable(TransientError):
    code = "unavailable"


class MalformedResponse(TransientError):
    code = "malformed_response"


class ConfigurationError(ProviderError):
    kind = "configuration"
    code = "configuration"


class AuthenticationFailed(ConfigurationError):
    code = "authentication_failed"


class UnknownModel(ConfigurationError):
    code = "unknown_model"


class BadRequest(ProviderError):
    kind = "bad_request"
    code = "bad_request"


class ContextTooLong(BadRequest):
    code = "context_too_long"


class InvalidRequest(BadRequest):
    code = "invalid_request"


class CatalogError(TierlineError):
    """The tier catalog file is invalid; the message names the line and the problem."""

    code = "catalog_invalid"


class OverlayError(CatalogError):
    """A live change (drain, threshold, weights, limit, ...) refused: the message says why."""

    code = "overlay_invalid"


class SchemaRegistryError(TierlineError):
    """A ``TIERLINE_SCHEMAS`` entry cannot be imported as a pydantic model."""

    code = "schemas_invalid"
