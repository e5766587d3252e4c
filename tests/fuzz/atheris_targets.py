"""Coverage-guided fuzzing of the hostile-input readers with atheris (libFuzzer).

The same readers and promises as the hypothesis pass (`tests/fuzz/readers.py`), fed
mutated raw bytes instead of generated structures: libFuzzer keeps the inputs that reach
new lines of tierline's code and mutates those. Any exception other than the readers'
own refusals is a finding: atheris prints the input and exits non-zero.

atheris runs the process (its `Fuzz` never returns), so it runs as a command of its own:

    .venv/bin/python -m tests.fuzz.atheris_targets TARGET [libFuzzer flags] [CORPUS_DIR ...]
    .venv/bin/python -m tests.fuzz.atheris_targets job -max_total_time=600 /tmp/corpus-job

TARGET is one of `batch_line`, `job`, `message`, `schema`; an empty corpus directory is
first filled with the target's seeds (`SEEDS`). The suite runs a bounded pass of each
(`test_atheris.py`: a few thousand inputs from the seeds).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["contract", "producers", "worker", "tasks", "tests"]):
    from tests.fuzz import readers

CONTENT_TYPES = ("application/json", "application/x-python-serialize", "text/plain", "")
ENCODINGS = ("utf-8", "binary", "latin-1")


def _json(data: bytes) -> tuple[bool, Any]:
    """(True, the value) when `data` is JSON, as a worker's decoder would read it."""
    try:
        return True, json.loads(data)
    except (ValueError, RecursionError):
        return False, None


def batch_line(data: bytes) -> None:
    # Byte 0: bit 0 routes, bit 1 reads the rest as text (with lone surrogates) not bytes.
    flags, rest = (data[0], data[1:]) if data else (0, b"")
    line: str | bytes = rest.decode("utf-8", "surrogateescape") if flags & 2 else rest
    readers.read_batch_line(line, route=bool(flags & 1))


def job(data: bytes) -> None:
    ok, payload = _json(data)
    if ok:
        readers.read_job(payload)


def message(data: bytes) -> None:
    # Bytes 0-2: content type, encoding, task id length (0: no id); then the id, the body.
    head = data[:3].ljust(3, b"\0")
    size = head[2] % 41
    task_id = data[3:3 + size].decode("latin-1") if size else None
    headers = {"task": "tierline.complete", "lang": "py"}
    readers.read_message(data[3 + size:], CONTENT_TYPES[head[0] % len(CONTENT_TYPES)],
                         ENCODINGS[head[1] % len(ENCODINGS)], headers, task_id)


def schema(data: bytes) -> None:
    ok, value = _json(data)
    if ok and isinstance(value, list) and len(value) == 2:
        readers.read_schema(value[0], value[1])


TARGETS: dict[str, Callable[[bytes], None]] = {
    "batch_line": batch_line, "job": job, "message": message, "schema": schema,
}

# A few valid and near-valid inputs per target for libFuzzer to start from.
_ASK = {"messages": [{"role": "user", "content": "hi"}]}
SEEDS: dict[str, list[bytes]] = {
    "batch_line": [
        b"\x00" + json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "m", **_ASK}}).encode(),
        b"\x03" + json.dumps({"custom_id": "b", "body": _ASK}).encode(),
        b"\x00" + b'{"custom_id": "\\ud800", "body": {}}',
    ],
    "job": [
        json.dumps(_ASK).encode(),
        json.dumps({**_ASK, "tenant": "acme", "metadata": {"k": 1},
                    "quality": {"must_match": ["(a+)+$"], "must_not_match": ["x"], "min_chars": 2}}).encode(),
        json.dumps({"document": "Acme Ltd", "schema": {"type": "object", "properties": {
            "p": {"type": "string", "pattern": "^A"}}}}).encode(),
    ],
    "message": [
        b"\x00\x00\x05job-1" + json.dumps([[], {"job": _ASK}, {}]).encode(),
        b"\x00\x01\x05abcde" + json.dumps([[_ASK], {}, {"chain": None}]).encode(),
        b"\x00\x00\x00" + json.dumps([[], {"job": _ASK}, {}]).encode(),
    ],
    "schema": [
        json.dumps([{"type": "object", "properties": {"x": {"$ref": "#/$defs/x"}},
                     "$defs": {"x": {"type": "string", "pattern": "a+"}}}, {"x": "aaa"}]).encode(),
        json.dumps([{"$ref": "http://127.0.0.1:9/s.json"}, 1]).encode(),
        json.dumps([{"patternProperties": {"(?<=a)": {}}}, {}]).encode(),
    ],
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.atheris_targets {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    for arg in argv[2:]:  # an empty corpus directory starts from the target's seeds
        corpus = Path(arg)
        if not arg.startswith("-") and corpus.is_dir() and not any(corpus.iterdir()):
            for n, seed in enumerate(SEEDS[argv[1]]):
                (corpus / f"seed-{n}").write_bytes(seed)
    atheris.Setup([argv[0], *argv[2:]], TARGETS[argv[1]])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
