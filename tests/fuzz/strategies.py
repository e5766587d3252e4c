"""Hypothesis strategies for hostile input: JSON values, job-shaped payloads, raw lines.

Text includes lone surrogates (which Python's JSON parser accepts and nothing can encode
back to UTF-8), control characters and long runs; schemas mix real JSON Schema keywords
(`$ref`, `$id`, `pattern`, `patternProperties`, ...) with junk.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.one_of(st.characters(), SURROGATES), max_size=20),
    st.sampled_from(["", "a" * 50 + "b", "(a+)+$", "\\1", "#/$defs/x", "http://127.0.0.1:9/s.json",
                     "file:///etc/passwd", "tenant:x:y", "\u0000", "\ud800", "é" * 30]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=20)

SCHEMA_KEYS = st.sampled_from([
    "type", "properties", "items", "required", "$ref", "$id", "$defs", "definitions", "$schema",
    "pattern", "patternProperties", "additionalProperties", "unevaluatedProperties", "enum",
    "minLength", "maxLength", "anyOf", "allOf", "$anchor", "$dynamicRef", "format", "const",
])
SCHEMA_VALUES = st.one_of(
    st.sampled_from(["object", "string", "integer", "array", "#", "#/$defs/a", "#/definitions/a",
                     "http://127.0.0.1:9/x", "other.json", "(a+)+$", "(?<=a)b", "[", "^x", "regex",
                     "https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-07/schema#"]),
    st.integers(-2, 5), st.booleans(), TEXT,
)
SCHEMAS: st.SearchStrategy[Any] = st.recursive(
    st.dictionaries(SCHEMA_KEYS, SCHEMA_VALUES, max_size=4),
    lambda inner: st.dictionaries(st.one_of(SCHEMA_KEYS, TEXT), st.one_of(inner, SCHEMA_VALUES,
                                  st.lists(inner, max_size=3)), max_size=5),
    max_leaves=12,
)
MESSAGES = st.lists(st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool", "wizard"]), JSON),
     "content": st.one_of(TEXT, JSON)}), max_size=4)
QUALITY = st.fixed_dictionaries({}, optional={
    "must_match": st.lists(TEXT, max_size=3), "must_not_match": st.lists(TEXT, max_size=3),
    "refusal_phrases": st.lists(TEXT, max_size=3), "json_schema": st.one_of(SCHEMAS, JSON),
    "json_output": st.booleans(), "min_chars": st.one_of(st.integers(-1, 10), JSON),
    "enabled": st.booleans(), "schema_name": TEXT,
})
JOBS: st.SearchStrategy[Any] = st.one_of(JSON, st.fixed_dictionaries({"messages": st.one_of(MESSAGES, JSON)}, optional={
    "quality": st.one_of(QUALITY, JSON), "metadata": JSON, "tenant": TEXT, "job_id": TEXT,
    "pin_model": TEXT, "min_tier": TEXT, "policy": TEXT, "max_output_tokens": JSON, "critical": JSON,
    "document": st.one_of(TEXT, JSON), "schema": st.one_of(SCHEMAS, JSON),
}))


def _dumped(value: Any) -> str:
    return json.dumps(value)  # escapes lone surrogates as \\udXXX: a valid JSON line


LINES = st.one_of(
    st.binary(max_size=200),
    st.text(st.one_of(st.characters(), SURROGATES), max_size=100),
    JSON.map(_dumped),
    JOBS.map(_dumped),
    st.fixed_dictionaries({"custom_id": TEXT, "body": JOBS}).map(_dumped),
    st.fixed_dictionaries({"custom_id": TEXT, "method": TEXT, "url": TEXT, "body": JOBS}).map(_dumped),
    JOBS.map(lambda job: job if isinstance(job, dict) else {"value": job}),
)
