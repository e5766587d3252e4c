"""Typed, frozen settings from the environment (``TIERLINE_*``), loaded once."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker import keys
from worker.limits import Limits

_LIMITS = Limits()

VISIBILITY_MARGIN_MIN_S = 10


class Settings(BaseSettings):
    """Everything a worker or a producer reads from its environment.

    Broker, results and routing state may live on different Redis servers or
    databases; each falls back to ``redis_url`` (``TIERLINE_REDIS_URL`` or ``REDIS_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="TIERLINE_", frozen=True, extra="ignore")

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TIERLINE_REDIS_URL", "REDIS_URL")
    )
    broker_url: str | None = None
    result_url: str | None = None
    state_url: str | None = None
    key_prefix: str = keys.DEFAULT_PREFIX

    catalog_path: Path | None = None
    tokenizer: str = "mistral:tekken_240911"
    policy: str = "tokens"
    # Pydantic models jobs may name as their answer's shape: "[name=]module:Class,...".
    schemas: str = ""
    provider_mode: Literal["auto", "simulated", "real"] = "auto"

    attempt_budget: int = Field(default=3, ge=1, le=20)
    # How long a transient failure (without Retry-After) flags a model busy.
    busy_ttl_s: float = Field(default=keys.BUSY_TTL_S, gt=0)
    backoff_s: float = Field(default=0.05, ge=0)
    max_escalations: int = Field(default=2, ge=0, le=5)
    max_deliveries: int = Field(default=3, ge=1)

    soft_time_limit_s: float = Field(default=120.0, gt=0)
    hard_time_limit_s: float = Field(default=150.0, gt=0)
    # Attempts end this long before the soft time limit, so that the result is stored
    # before the limit can interrupt it (a limit landing in the store fails the task).
    deadline_margin_s: float = Field(default=0.5, ge=0.1)
    # None: derived from the hard limit (`visibility_s`): a dead worker's jobs come back
    # that long after they were delivered, so a margin above the longest a job may run.
    visibility_timeout_s: int | None = Field(default=None, gt=0)
    result_expires_s: int = Field(default=86_400, gt=0)
    # A result write is retried this long while the result backend's Redis is away.
    result_outage_s: float = Field(default=120.0, ge=0)
    # How often a worker deletes expired results on a result backend without TTLs (a database).
    result_cleanup_s: float = Field(default=3600.0, gt=0)
    max_tasks_per_child: int = Field(default=1000, ge=1)
    # A pool process (prefork) or the whole worker (gevent, threads: a warm shutdown for the
    # supervisor to restart) is replaced once its resident memory passes this (None: never).
    max_memory_mb: int | None = Field(default=None, ge=64)
    concurrency: int = Field(default=2, ge=1)

    redis_max_connections: int = Field(default=16, ge=2)
    redis_socket_timeout_s: float = Field(default=2.0, gt=0)
    redis_health_check_s: int = Field(default=30, ge=0)

    sim_refresh_s: float = Field(default=0.5, ge=0)
    # Replace e-mail addresses, phone, card and IBAN numbers and API keys in a result
    # (answer, parsed value, reasons) before it is stored.
    redact_results: bool = False
    # The HMAC key of re-queued jobs' carries; unset: one generated and kept in Redis.
    carry_secret: SecretStr | None = None

    # Live routing control (worker/health.py, worker/ratelimit.py, worker/budget.py).
    health_window_s: float = Field(default=300.0, gt=0)
    health_bucket_s: float = Field(default=10.0, gt=0)
    health_max_error_rate: float = Field(default=0.2, gt=0, le=1)
    health_max_p95_ms: float | None = Field(default=None, gt=0)
    health_min_samples: int = Field(default=20, ge=1)
    health_open_s: float = Field(default=30.0, ge=0)
    health_probe_share: float = Field(default=0.05, ge=0, le=1)
    health_probe_samples: int = Field(default=5, ge=1)
    # The rate limits' window: "rpm" and "tpm" are per minute; a shorter window is for drills.
    rate_limit_window_s: float = Field(default=60.0, gt=0)
    # At a model's limit: False moves on to the next candidate; True waits for the first
    # model to free up while the job's deadline allows (then moves on).
    rate_limit_wait: bool = False
    # Limits on one job, checked before it is validated (worker/limits.py).
    max_message_bytes: int = Field(default=_LIMITS.message_bytes, gt=0)
    max_job_bytes: int = Field(default=_LIMITS.job_bytes, gt=0)
    max_messages: int = Field(default=_LIMITS.messages, gt=0)
    max_metadata_bytes: int = Field(default=_LIMITS.metadata_bytes, gt=0)
    max_document_bytes: int = Field(default=_LIMITS.document_bytes, gt=0)
    max_schema_bytes: int = Field(default=_LIMITS.schema_bytes, gt=0)
    max_patterns: int = Field(default=_LIMITS.patterns, ge=0)
    max_pattern_chars: int = Field(default=_LIMITS.pattern_chars, gt=0)
    max_phrases: int = Field(default=_LIMITS.phrases, ge=0)
    max_phrase_chars: int = Field(default=_LIMITS.phrase_chars, gt=0)
    # Metrics: the width of a time bucket, how long buckets stay, the team names that get
    # a label of their own (empty: any short name, up to METRICS_MAX_TEAMS per process).
    metrics_bucket_s: int = Field(default=60, ge=1, le=3600)
    metrics_retention_s: int = Field(default=2 * 86_400, ge=60)
    metrics_teams: str = ""
    metrics_port: int = Field(default=9808, ge=0, le=65_535)

    mistral_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TIERLINE_MISTRAL_API_KEY", "MISTRAL_API_KEY")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TIERLINE_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    mistral_base_url: str | None = None
    openai_base_url: str | None = None

    @model_validator(mode="after")
    def _limits_in_order(self) -> Settings:
        if self.hard_time_limit_s <= self.soft_time_limit_s:
            raise ValueError("hard_time_limit_s must be greater than soft_time_limit_s")
        if self.visibility_timeout_s is not None and self.visibility_timeout_s <= self.hard_time_limit_s:
            raise ValueError("visibility_timeout_s must be greater than hard_time_limit_s")
        return self

    @property
    def visibility_s(self) -> int:
        """Seconds before the Redis broker hands an unacknowledged job to another worker.

        The explicit setting, else the hard limit plus a margin (a fifth of it, at least
        10 s): a job cannot run longer than the hard limit, so a message unacknowledged
        past that belongs to a dead worker.
        """
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        return math.ceil(self.hard_time_limit_s + max(VISIBILITY_MARGIN_MIN_S, self.hard_time_limit_s / 5))

    @property
    def broker(self) -> str:
        return self.broker_url or self._redis("broker")

    @property
    def results(self) -> str:
        return self.result_url or self._redis("results")

    @property
    def state(self) -> str:
        return self.state_url or self._redis("routing state")

    @property
    def limits(self) -> Limits:
        return Limits(
            message_bytes=self.max_message_bytes, job_bytes=self.max_job_bytes, messages=self.max_messages,
            metadata_bytes=self.max_metadata_bytes, document_bytes=self.max_document_bytes,
            schema_bytes=self.max_schema_bytes, patterns=self.max_patterns, pattern_chars=self.max_pattern_chars,
            phrases=self.max_phrases, phrase_chars=self.max_phrase_chars,
        )

    @property
    def keys(self) -> keys.Keys:
        return keys.Keys(self.key_prefix)

    def _redis(self, what: str) -> str:
        if not self.redis_url:
            raise RuntimeError(
                f"no Redis URL for the {what}: set REDIS_URL (or TIERLINE_REDIS_URL), "
                "or start through `tierline worker` / `tierline demo`, which start a private one"
            )
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
