"""The client's own settings: where the broker and the results are, read from the environment.

The same variables as the worker's (``REDIS_URL`` / ``TIERLINE_REDIS_URL``,
``TIERLINE_BROKER_URL``, ``TIERLINE_RESULT_URL``), so one environment serves both sides;
nothing else of the worker's settings (time limits, keys, providers) is read here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProducerSettings(BaseSettings):
    """Broker and result-backend URLs; each falls back to ``redis_url``."""

    model_config = SettingsConfigDict(env_prefix="TIERLINE_", frozen=True, extra="ignore")

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TIERLINE_REDIS_URL", "REDIS_URL")
    )
    broker_url: str | None = None
    result_url: str | None = None
    # Only for the batch summary's all-large comparison (the strongest tier's price).
    catalog_path: Path | None = None

    @property
    def broker(self) -> str:
        return self.broker_url or self._redis("broker")

    @property
    def results(self) -> str:
        return self.result_url or self._redis("results")

    def _redis(self, what: str) -> str:
        if not self.redis_url:
            raise RuntimeError(
                f"no Redis URL for the {what}: set REDIS_URL (or TIERLINE_REDIS_URL) to the workers' Redis"
            )
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> ProducerSettings:
    """The process's producer settings, read from the environment once."""
    return ProducerSettings()
