"""The longest a job's CPU-bound steps hold a gevent process, at the limits' largest inputs.

Under gevent a step that computes without yielding stalls every other job of its process
for as long as it runs. This times each such step on the biggest input the default
limits (`worker/limits.py`) let a job bring, and sets it against the deadlines:

- reading the job (its JSON, the limits, the schema) and counting its tokens, at `TIERLINE_MAX_JOB_BYTES`;
- the quality gate on a 200,000-token answer (`max_output_tokens`' bound) with the most
  RE2 patterns a job may carry, each of the longest length;
- JSON Schema validation of a large JSON answer against a schema of `TIERLINE_MAX_SCHEMA_BYTES`.

    python -m ops.bench.cpu_steps [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from contract.schemas import Job, QualitySpec
from operators.samples import conversation
from worker import quality
from worker.limits import Limits, breach
from worker.settings import get_settings
from worker.tokens import TokenCounter


def best_ms(step: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in ms (the least disturbed by the machine's other work)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def biggest_job(limits: Limits) -> list[dict[str, str]]:
    """The messages of a conversation just under the job size limit, 100 of them."""
    rng = random.Random(1)
    per_message = limits.job_bytes // 100
    messages = []
    for n in range(100):
        text = conversation(rng, per_message // 6)[1]["content"][: per_message - 100]
        messages.append({"role": "user" if n % 2 == 0 else "assistant", "content": text})
    return messages


def patterns(limits: Limits) -> tuple[str, ...]:
    """The most patterns a job may carry, each as long as allowed, none matching."""
    word = "(?:alpha|beta|gamma|delta)[0-9]{2,4}-"
    body = word * ((limits.pattern_chars - 5) // len(word))
    return tuple(f"{body}z{n}" for n in range(limits.patterns - 1))  # and one must_match


def big_schema(limits: Limits) -> tuple[dict[str, object], list[str]]:
    """An object schema just under the schema size limit (many typed properties), and
    its property names."""
    props: dict[str, object] = {}
    schema: dict[str, object] = {"type": "object", "properties": props, "required": []}
    n = 0
    while len(json.dumps(schema)) < limits.schema_bytes - 200:
        props[f"field_{n}"] = {"type": "string", "maxLength": 200}
        n += 1
    return schema, list(props)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    limits, settings = Limits(), get_settings()
    counter = TokenCounter()
    counter.warm()

    job = {"messages": biggest_job(limits)}
    contents = [m["content"] for m in job["messages"]]
    job_bytes = sum(len(c.encode()) for c in contents)
    answer = ("the quick brown fox jumps over the lazy dog " * 100_000)[:800_000]
    answer_tokens = counter.text(answer)
    spec = QualitySpec(must_not_match=patterns(limits), must_match=("lazy dog",))
    schema, names = big_schema(limits)
    value = {name: "x" * 150 for name in names}
    json_answer = json.dumps(value)
    json_spec = QualitySpec(json_schema=schema)

    raw = json.dumps({"job": job})
    rows = [
        (f"read the job (JSON, limits, schema): {job_bytes:,} bytes", best_ms(
            lambda: (breach(json.loads(raw)["job"], limits), Job.model_validate(job)), args.repeat)),
        (f"count its tokens: {counter.conversation(contents).tokens:,} tokens", best_ms(
            lambda: counter.conversation(contents), args.repeat)),
        (f"quality gate, {len(spec.must_not_match) + 1} RE2 patterns on {answer_tokens:,} tokens",
         best_ms(lambda: quality.check(answer, spec), args.repeat)),
        (f"JSON Schema ({len(json.dumps(schema)):,} bytes, {len(value)} properties) on a "
         f"{len(json_answer):,}-byte answer", best_ms(lambda: quality.check(json_answer, json_spec), args.repeat)),
        (f"count the answer's tokens: {answer_tokens:,}", best_ms(lambda: counter.text(answer), args.repeat)),
    ]
    out = Table(title="CPU-bound steps at the limits' largest inputs: how long each holds a gevent process")
    for column in ("step", "ms (best of runs)", "share of the soft limit"):
        out.add_column(column, justify="right")
    for name, ms in rows:
        out.add_row(name, f"{ms:,.1f}", f"{ms / 1000 / settings.soft_time_limit_s:.2%}")
    Console(width=140).print(out)


if __name__ == "__main__":
    main()
