"""Structured extraction, the pure part: prompts, chunks that fit a context, merge rules.

A document bigger than a model's context is split into chunks that fit with the prompt
and the output budget; each chunk's answer is a JSON object valid for the schema, and
the answers merge by a rule per top-level property that the schema declares:

- an array property is concatenated, in chunk order;
- a scalar property (string, number, integer, boolean, null, or a union of them) takes
  the first non-empty value;
- anything else (a nested object, an untyped or ``anyOf`` property) needs an explicit
  ``"x-merge": "first"`` or ``"x-merge": "concat"``; without one the schema cannot merge,
  and a document that needs more than one chunk fails with ``unmergeable_schema``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MERGE_KEY = "x-merge"
MergeRule = Literal["concat", "first"]
_SCALARS = frozenset({"string", "number", "integer", "boolean", "null"})
# Coarsest first: paragraphs, lines, sentences, words; a chunk breaks at the coarsest
# boundary that makes it fit. Whitespace starts the next piece, as the tokenizer's own
# pre-split has it, so the tokens of the pieces add up to about those of the whole.
_BOUNDARIES = tuple(re.compile(p) for p in (r"(?=\n\n)", r"(?=\n)", r"(?<=[.!?])(?=\s)", r"(?=\s)"))

Count = Callable[[str], int]


@dataclass(frozen=True)
class MergePlan:
    """The rule per top-level property, or the `problem` that makes the schema unmergeable."""

    rules: Mapping[str, MergeRule]
    problem: str | None = None


def merge_plan(schema: Mapping[str, Any]) -> MergePlan:
    """How answers valid for `schema` (an object schema) merge across chunks."""
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return MergePlan({}, "the schema has no top-level properties to merge")
    rules: dict[str, MergeRule] = {}
    for name, sub in properties.items():
        rule = _rule(sub if isinstance(sub, dict) else {})
        if rule is None:
            return MergePlan({}, _unmergeable(name, sub))
        rules[name] = rule
    return MergePlan(rules)


def _rule(sub: Mapping[str, Any]) -> MergeRule | None:
    kinds = _kinds(sub)
    declared = sub.get(MERGE_KEY)
    if declared == "first":
        return "first"
    if declared == "concat":
        return "concat" if kinds <= {"array", "string", "null"} else None
    if declared is not None:
        return None
    if "array" in kinds and kinds <= {"array", "null"}:
        return "concat"
    if kinds and kinds <= _SCALARS or not kinds and _scalar_values(sub):
        return "first"
    return None


def _kinds(sub: Mapping[str, Any]) -> set[str]:
    kinds = sub.get("type")
    return {kinds} if isinstance(kinds, str) else set(kinds or ())


def _scalar_values(sub: Mapping[str, Any]) -> bool:
    """An untyped property limited to scalar values by ``enum`` or ``const``."""
    values = sub["enum"] if isinstance(sub.get("enum"), list) else [sub.get("const", {})]
    return all(v is None or isinstance(v, str | int | float | bool) for v in values)


def _unmergeable(name: str, sub: object) -> str:
    spec = sub if isinstance(sub, dict) else {}
    declared = spec.get(MERGE_KEY)
    kind = "/".join(sorted(_kinds(spec))) or "untyped"
    if declared == "concat":
        return f"property {name!r} ({kind}): {MERGE_KEY} \"concat\" merges only lists and strings"
    if declared is not None:
        return f"property {name!r}: {MERGE_KEY} must be \"concat\" or \"first\", not {declared!r}"
    return (
        f"property {name!r} ({kind}) has no merge rule: give it "
        f"\"{MERGE_KEY}\": \"first\" (or \"concat\" for a list) to merge it across chunks"
    )


def merge(parts: Sequence[Mapping[str, Any]], rules: Mapping[str, MergeRule]) -> dict[str, Any]:
    """One object from the chunk answers `parts`, in order; undeclared keys take `first`."""
    names = list(rules) + [k for part in parts for k in part if k not in rules]
    merged: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        values = [part[name] for part in parts if name in part]
        if values:
            merged[name] = _concat(values) if rules.get(name) == "concat" else _first(values)
    return merged


def _concat(values: Sequence[Any]) -> Any:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, list) for v in present):
        return [item for v in present for item in v]
    if present and all(isinstance(v, str) for v in present):
        return "\n".join(v for v in present if v)
    return _first(values)


def _first(values: Sequence[Any]) -> Any:
    return next((v for v in values if v not in (None, "", [], {})), values[0])


def provider_schema(schema: Any) -> Any:
    """`schema` without tierline's merge annotations (strict JSON modes reject unknown keys)."""
    if isinstance(schema, dict):
        return {k: provider_schema(v) for k, v in schema.items() if k != MERGE_KEY}
    if isinstance(schema, list):
        return [provider_schema(v) for v in schema]
    return schema


def system_prompt(schema: Mapping[str, Any], instructions: str | None) -> str:
    """The extraction instructions every chunk is sent with."""
    lines = [
        "Extract data from the document the user sends. Answer with one JSON object, "
        "and nothing else, that is valid against this JSON Schema:",
        json.dumps(schema, ensure_ascii=False, separators=(",", ":")),
        "Use empty values (null, \"\", []) for what the text does not state.",
    ]
    if instructions:
        lines.append(instructions)
    return "\n".join(lines)


def chunk_prompt(system: str, index: int, total: int) -> str:
    """The system prompt for chunk `index` (0-based) of `total`."""
    if total == 1:
        return system
    return f"{system}\nThe text is part {index + 1} of {total} of a longer document."


# The part note of `chunk_prompt`, with room to spare.
PART_NOTE_TOKENS = 24


def chunk_budget(*, context_tokens: int, prompt_tokens: int, output_tokens: int) -> int:
    """Document tokens one chunk may hold: what the context leaves after prompt and output."""
    return context_tokens - prompt_tokens - output_tokens - PART_NOTE_TOKENS


def split(text: str, budget: int, count: Count) -> list[str]:
    """`text` in consecutive chunks of at most `budget` tokens (by `count`); joined, the text.

    Chunks break at paragraph, then line, sentence and word boundaries; a run without any
    boundary is cut where it has to be.
    """
    if budget < 1:
        raise ValueError(f"chunk budget must be at least one token, got {budget}")
    if count(text) <= budget:
        return [text]
    pieces = _pieces(text, budget, count, 0)
    return [c for chunk in _pack(pieces, budget) for c in _fit(chunk, budget, count)]


def _pieces(text: str, budget: int, count: Count, level: int) -> list[tuple[str, int]]:
    """`text` in pieces of at most `budget` tokens each, cut at boundaries of `level` or finer,
    each with its token count (counted once)."""
    if level == len(_BOUNDARIES):
        return _hard_cut(text, budget, count)
    out: list[tuple[str, int]] = []
    for part in (p for p in _BOUNDARIES[level].split(text) if p):
        tokens = count(part)
        if tokens <= budget:
            out.append((part, tokens))
        else:
            out.extend(_pieces(part, budget, count, level + 1))
    return out


def _hard_cut(text: str, budget: int, count: Count) -> list[tuple[str, int]]:
    """Cut a run without boundaries, each cut shrunk until it fits (or is one character)."""
    out = []
    while text:
        size = min(len(text), budget * 4)
        tokens = count(text[:size])
        while size > 1 and tokens > budget:
            size = max(1, min(size - 1, size * budget // tokens))
            tokens = count(text[:size])
        out.append((text[:size], tokens))
        text = text[size:]
    return out


def _pack(pieces: Sequence[tuple[str, int]], budget: int) -> list[str]:
    """Join consecutive pieces greedily while their summed counts stay within `budget`."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece, tokens in pieces:
        if current and used + tokens > budget:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(piece)
        used += tokens
    if current:
        chunks.append("".join(current))
    return chunks


def _fit(chunk: str, budget: int, count: Count) -> list[str]:
    """`chunk` if its exact count fits, else split again with a budget cut by the excess."""
    tokens = count(chunk)
    if tokens <= budget or len(chunk) == 1:
        return [chunk]
    return split(chunk, max(1, 2 * budget - tokens), count)
