"""Requests from a batch JSONL file, counted by the worker's own token counter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from operators.replay.workload import UNKNOWN_OUTPUT_TOKENS, Request, WorkloadError
from producers.batch.lines import BadLine, parse_line
from worker.tokens import TokenCounter

BATCH_INTERVAL_S = 1.0


def read_jsonl(path: Path, *, tokenizer: str | None = None, small_tokens: int | None = None) -> Iterator[Request]:
    """The requests of a batch file, one a second in file order (see `workload`)."""
    counter = TokenCounter(tokenizer) if tokenizer else TokenCounter()
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            line = parse_line(raw, number, route=True)
            if isinstance(line, BadLine):
                raise WorkloadError(f"{path}, line {number}: {line.error.code}: {line.error.message}")
            if line is None:
                continue
            job = line.job
            contents = [m["content"] for m in job["messages"]]
            tokens = counter.conversation(contents, bound=small_tokens).tokens
            budget = int(job.get("max_output_tokens", 1024))
            category = job.get("metadata", {}).get("category")
            yield Request(
                at_s=(number - 1) * BATCH_INTERVAL_S, tokens_in=tokens,
                tokens_out=min(budget, UNKNOWN_OUTPUT_TOKENS),
                category=str(category) if category is not None else None, max_output_tokens=budget,
            )
