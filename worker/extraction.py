"""Structured extraction, the pure part: prompts, and chunks that fit a context.

A document bigger than a model's context is split into chunks that fit with the prompt
and the output budget; each chunk's answer is a JSON object valid for the schema, and
the answers merge by the rules in `worker.merge`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.merge import MERGE_KEY

# Coarsest first: paragraphs, lines, sentences, words; a chunk breaks at the coarsest
# boundary that makes it fit. Whitespace starts the next piece, as the tokenizer's own
# pre-split has it, so the tokens of the pieces add up to about those of the whole.
_BOUNDARIES = tuple(re.compile(p) for p in (r"(?=\n\n)", r"(?=\n)", r"(?<=[.!?])(?=\s)", r"(?=\s)"))

Count = Callable[[str], int]


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


def offsets(chunks: Sequence[str]) -> list[tuple[int, int]]:
    """Where each chunk of `split`'s answer starts and ends in the text (characters)."""
    out, start = [], 0
    for chunk in chunks:
        out.append((start, start + len(chunk)))
        start += len(chunk)
    return out
