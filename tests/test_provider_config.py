"""Which endpoint and key each catalog model uses, and what Retry-After means: no worker needed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest
import redis

from tests.llm_server import LLMServer
from tests.support import ROOT
from worker.catalog import parse_catalog
from worker.errors import CatalogError
from worker.plan import Route, plan
from worker.providers import provider_report
from worker.providers.base import ChatRequest
from worker.providers.http_errors import retry_after_s
from worker.providers.real import build_real_providers, endpoints
from worker.settings import Settings

MIXED = """
[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "LOCAL_LLM_KEY"

[providers.ollama]
base_url = "http://127.0.0.1:9/v1"

[[tiers]]
name = "small"
max_tokens = 3000
timeout_s = 5.0

  [[tiers.models]]
  name = "mistral-small-latest"
  provider = "mistral"
  context_tokens = 32000
  usd_per_mtok_in = 0.2
  usd_per_mtok_out = 0.6

  [[tiers.models]]
  name = "gpt-4o-mini"
  provider = "openai"
  context_tokens = 128000
  usd_per_mtok_in = 0.15
  usd_per_mtok_out = 0.6

  [[tiers.models]]
  name = "llama-3.1-8b"
  provider = "local"
  context_tokens = 8000
  usd_per_mtok_in = 0
  usd_per_mtok_out = 0

[[tiers]]
name = "large"

  [[tiers.models]]
  name = "mistral-large-latest"
  provider = "mistral"
  context_tokens = 128000
  usd_per_mtok_in = 2
  usd_per_mtok_out = 6

  [[tiers.models]]
  name = "qwen2.5"
  provider = "ollama"
  context_tokens = 32000
  usd_per_mtok_in = 0
  usd_per_mtok_out = 0
"""


def settings(**fields: object) -> Settings:
    """Settings with no key but those given, whatever this process's environment holds."""
    keys: dict[str, object] = {"MISTRAL_API_KEY": None, "OPENAI_API_KEY": None, "provider_mode": "auto"}
    return Settings(**{**keys, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 12.5 "}, 12.5),
        ({"retry-after": "0"}, 1.0),  # a flag that exists for a moment, not the 60 s default
        ({"retry-after": "86400"}, 3600.0),  # a bogus header cannot disable a model for a day
        ({"retry-after": formatdate(1_000_030, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(999_000, usegmt=True)}, 1.0),  # already past
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Wednesday"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date_clamped(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers, now=1_000_000) == expected


def test_catalog_providers_table_names_an_endpoint_and_its_key_variable() -> None:
    catalog = parse_catalog(MIXED)
    local = catalog.providers["local"]
    assert (local.kind, local.base_url, local.api_key_env) == ("openai", "http://127.0.0.1:9/v1", "LOCAL_LLM_KEY")
    assert catalog.providers["ollama"].api_key_env is None


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ('provider = "local"', 'provider = "locall"', 1, "names provider 'locall'"),
        ('base_url = "http://127.0.0.1:9/v1"\napi_key_env', 'base_url = "127.0.0.1:9"\napi_key_env', 4,
         "should match pattern"),
        ('api_key_env = "LOCAL_LLM_KEY"', 'api_key = "sk-live-123456"', 2, "a key does not belong"),
        ("[providers.ollama]", "[providers.openai]", 1, "built in"),
    ],
)
def test_bad_providers_table_is_a_catalog_error(old: str, new: str, line: int, words: str) -> None:
    assert old in MIXED
    with pytest.raises(CatalogError) as caught:
        parse_catalog(MIXED.replace(old, new, 1), where="mine.toml")
    assert str(caught.value).startswith(f"mine.toml, line {line}:")
    assert words in str(caught.value)
    assert "sk-live-123456" not in str(caught.value)


def test_models_whose_provider_has_no_key_are_left_out() -> None:
    catalog = parse_catalog(MIXED)
    config = settings(MISTRAL_API_KEY="sk-test-m", mistral_base_url="http://127.0.0.1:9")

    providers = build_real_providers(config, catalog, environ={})

    assert sorted(providers) == ["mistral-large-latest", "mistral-small-latest", "qwen2.5"]
    assert providers["mistral-small-latest"] is providers["mistral-large-latest"]  # one client
    report = provider_report(config, catalog, environ={})
    assert report.mode == "real"
    assert report.left_out == ("gpt-4o-mini", "llama-3.1-8b")
    assert "mistral (2 models, http://127.0.0.1:9)" in report.text
    assert "left out, OPENAI_API_KEY not set: gpt-4o-mini" in report.text
    assert "left out, LOCAL_LLM_KEY not set: llama-3.1-8b" in report.text


def test_without_keys_the_worker_simulates_and_says_why() -> None:
    report = provider_report(settings(), parse_catalog(MIXED))
    assert (report.mode, report.text) == ("simulated", "simulated (no provider keys set)")
    assert report.served == parse_catalog(MIXED).model_names


def test_logged_base_url_drops_any_credentials() -> None:
    config = settings(OPENAI_API_KEY="sk-test-o", openai_base_url="https://bob:hunter2@gw.example:8443/v1")
    assert endpoints(config, parse_catalog(MIXED), {})["openai"].shown_url == "https://gw.example:8443/v1"


def test_catalog_provider_key_comes_from_its_variable_and_a_keyless_one_sends_none(
    llm_server: LLMServer,
) -> None:
    llm_server.reset()
    text = MIXED.replace("http://127.0.0.1:9/v1", f"{llm_server.url}/v1")
    config = settings(OPENAI_API_KEY="sk-test-openai-must-stay-home")
    providers = build_real_providers(config, parse_catalog(text), environ={"LOCAL_LLM_KEY": "sk-test-local"})

    for model in ("llama-3.1-8b", "qwen2.5"):
        providers[model].chat(ChatRequest(model=model, messages=({"role": "user", "content": "hi"},)),
                              timeout_s=2)

    assert llm_server.requests("llama-3.1-8b")[0].authorization == "Bearer sk-test-local"
    # Not the OpenAI key: the SDK would have read it from the environment.
    assert llm_server.requests("qwen2.5")[0].authorization == "Bearer no-key"
    assert providers["llama-3.1-8b"].name == "local"


def test_plan_never_offers_a_model_this_worker_cannot_call() -> None:
    catalog = parse_catalog(MIXED)
    route = Route(tokens=100, output_tokens=100, start_tier=0)
    callable_models = {"gpt-4o-mini", "mistral-large-latest"}

    free = plan(route, frozenset(), catalog, available=callable_models)
    everything_busy = plan(route, frozenset(catalog.model_names), catalog, available=callable_models)

    assert [c.model.name for c in free.candidates] == ["gpt-4o-mini", "mistral-large-latest"]
    assert everything_busy.all_busy
    assert [c.model.name for c in everything_busy.candidates] == ["gpt-4o-mini", "mistral-large-latest"]


def test_retry_after_date_uses_the_current_time_by_default() -> None:
    wait = retry_after_s({"retry-after": formatdate(time.time() + 20, usegmt=True)})
    assert wait is not None and 18 <= wait <= 20


def test_models_command_shows_who_serves_each_model_and_busy_time_left(
    idle_db_url: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "mixed.toml"
    catalog.write_text(MIXED)
    prefix = f"models-{os.getpid()}:"
    client = redis.Redis.from_url(idle_db_url)
    client.set(f"{prefix}busy:mistral-small-latest", "transient:rate_limited", ex=3_600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERLINE_") and not k.endswith("_API_KEY")}
    env.update(REDIS_URL=idle_db_url, TIERLINE_KEY_PREFIX=prefix, TIERLINE_CATALOG_PATH=str(catalog),
               MISTRAL_API_KEY="sk-test-models-cmd", COLUMNS="250", PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run([sys.executable, "-c", "from operators.cli import main; main()", "models"],
                             env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    finally:
        client.delete(f"{prefix}busy:mistral-small-latest")
        client.close()

    rows = {line.split("│")[3].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert "mistral (https://api.mistral.ai)" in rows["mistral-small-latest"]
    # The time left is read, not guessed: under the hour set, and not past the command's timeout.
    left = re.search(r"transient:rate_limited, (\d+)s left", rows["mistral-small-latest"])
    assert left and 3_600 - 60 <= int(left.group(1)) <= 3_600
    assert "openai: left out, OPENAI_API_KEY not set" in rows["gpt-4o-mini"]
    assert "local: left out, LOCAL_LLM_KEY not set" in rows["llama-3.1-8b"]
    assert "ollama (http://127.0.0.1:9/v1, openai API)" in rows["qwen2.5"]
    assert rows["mistral-large-latest"].rstrip("│ ").endswith("no")
    assert "sk-test-models-cmd" not in out
