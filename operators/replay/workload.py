"""A workload to replay, read as a stream of `Request`s (memory stays flat).

Shapes:
- CSV of token counts: ``TIMESTAMP,ContextTokens,GeneratedTokens`` (the Azure LLM
  inference trace), with an optional ``Category`` column; headers are matched without
  regard to case. TIMESTAMP is ``YYYY-MM-DD HH:MM:SS[.fraction]`` (UTC) or Unix seconds.
- JSONL batch files (OpenAI Batch API, Mistral batch or tierline's plain lines): each
  conversation counted by tierline's own token counter, as a worker would route it. A
  batch file has no timestamps: one request a second, in file order. The answer length is
  unknown: `min(max_output_tokens, unknown_output_tokens)`; the category comes from
  ``metadata.category`` when the line has one.

A bad line or file raises `WorkloadError` naming the file and the line.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from worker.errors import TierlineError

DEFAULT_OUTPUT_BUDGET = 1024
UNKNOWN_OUTPUT_TOKENS = 256
SHIPPED_TRACE = Path(__file__).parent / "traces" / "azure_llm_2023_conv.csv"


class WorkloadError(TierlineError):
    """A workload file, or one of its lines, cannot be read; the message names the line."""

    code = "bad_workload"


class Request(NamedTuple):
    """One request of a workload (a named tuple: a million of them are made quickly).

    at_s: when it arrived (Unix seconds). tokens_in: its routed token count.
    tokens_out: the tokens its answer takes. category: its kind of work, if known.
    max_output_tokens: its output budget (the plan needs context for it).
    """

    at_s: float
    tokens_in: int
    tokens_out: int
    category: str | None = None
    max_output_tokens: int = DEFAULT_OUTPUT_BUDGET


def read(path: Path, *, output_budget: int = DEFAULT_OUTPUT_BUDGET, tokenizer: str | None = None,
         small_tokens: int | None = None) -> Iterator[Request]:
    """The requests of the workload at `path`, by its shape (``.jsonl`` or CSV).

    output_budget: the output budget of CSV requests (at least their answer's length).
    tokenizer / small_tokens: how JSONL conversations are counted (the worker's counter
    spec and the small tier's threshold, below which it uses the UTF-8 bound).
    """
    if not path.is_file():
        raise WorkloadError(f"{path}: no such file")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        from operators.replay.batch_workload import read_jsonl

        return read_jsonl(path, tokenizer=tokenizer, small_tokens=small_tokens)
    return read_csv(path, output_budget=output_budget)


_COLUMNS = {"timestamp": "at", "contexttokens": "in", "generatedtokens": "out", "category": "category"}


def read_csv(path: Path, *, output_budget: int = DEFAULT_OUTPUT_BUDGET) -> Iterator[Request]:
    """Requests from a CSV of token counts (see the module docstring)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        try:
            header = next(rows)
        except StopIteration:
            raise WorkloadError(f"{path}: empty file, expected a header line "
                                "TIMESTAMP,ContextTokens,GeneratedTokens") from None
        at, tin, tout, cat = _positions(path, header)
        parse_time = _TimeParser()
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            try:
                tokens_in, tokens_out = int(row[tin]), int(row[tout])
                when = parse_time(row[at])
                category = row[cat] or None if cat is not None else None
            except (ValueError, IndexError) as exc:
                raise WorkloadError(f"{path}, line {number}: {_why(exc, row)}") from None
            if tokens_in < 0 or tokens_out < 0:
                raise WorkloadError(f"{path}, line {number}: token counts cannot be negative: {row}")
            yield Request(when, tokens_in, tokens_out, category, max(output_budget, tokens_out))


def _positions(path: Path, header: list[str]) -> tuple[int, int, int, int | None]:
    found = {_COLUMNS[h.strip().lower()]: i for i, h in enumerate(header) if h.strip().lower() in _COLUMNS}
    missing = [name for name, key in (("TIMESTAMP", "at"), ("ContextTokens", "in"), ("GeneratedTokens", "out"))
               if key not in found]
    if missing:
        raise WorkloadError(f"{path}, line 1: the header {','.join(header)!r} lacks {', '.join(missing)} "
                            "(expected TIMESTAMP,ContextTokens,GeneratedTokens[,Category])")
    return found["at"], found["in"], found["out"], found.get("category")


def _why(exc: Exception, row: list[str]) -> str:
    if isinstance(exc, IndexError):
        return f"too few fields ({len(row)}): {','.join(row)!r}"
    return f"{exc} in {','.join(row)!r}"


class _TimeParser:
    """Parses trace timestamps; the date part of the Azure shape is converted once per day."""

    def __init__(self) -> None:
        self._day: tuple[str, float] = ("", 0.0)

    def __call__(self, text: str) -> float:
        if len(text) >= 19 and text[10] in " T" and text[4] == "-":
            day = text[:10]
            if day != self._day[0]:
                self._day = (day, float(calendar.timegm(datetime.strptime(day, "%Y-%m-%d").timetuple())))
            if text[13] != ":" or text[16] != ":":
                raise ValueError(f"bad time {text!r}")
            return self._day[1] + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + float(text[17:])
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ValueError(f"bad timestamp {text!r} (expected YYYY-MM-DD HH:MM:SS or Unix seconds)") from None
