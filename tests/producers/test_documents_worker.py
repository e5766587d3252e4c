"""`tierline extract` through a real worker: folders and JSONL, resume, changed files, bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from producers import run_extraction, submit_documents
from producers.batch import DuplicateCustomIds
from producers.documents import InvalidExtraction
from tests.producers.test_documents_reading import pdf_bytes
from tests.support import ROOT, RunningWorker
from worker.providers.simulated import Behaviour, Script

TIERLINE = str(Path(sys.executable).with_name("tierline"))
SCHEMA = {"type": "object", "properties": {
    "parties": {"type": "array", "items": {"type": "string"}}, "title": {"type": "string"}}}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def folder(tmp_path: Path, documents: int) -> Path:
    """`documents` text files in a tree, plus one of each kind that cannot be read."""
    root = tmp_path / "contracts"
    (root / "2024").mkdir(parents=True)
    for i in range(documents):
        (root / ("2024" if i % 2 else "") / f"c{i:02d}.txt").write_text(f"Contract {i} between Acme and Globex.")
    (root / "page.html").write_text("<h1>Offer</h1><p>From Initech to Acme.</p>")
    (root / "scan.pdf").write_bytes(pdf_bytes("Umbrella supplies Acme"))
    (root / "empty.txt").write_bytes(b"")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "old.txt").write_bytes("Vertrag über 5 Stück".encode("latin-1"))
    return root


def test_a_folder_run_extracts_every_readable_document_and_reports_the_others(
    worker: RunningWorker, tmp_path: Path
) -> None:
    worker.script(Script())
    source, out = folder(tmp_path, 6), tmp_path / "out.jsonl"

    progress = run_extraction(source, SCHEMA, out, app=worker.app, window=3, provenance=True)

    records = {r["id"]: r for r in read_jsonl(out)}
    assert set(records) == {"c00.txt", "2024/c01.txt", "c02.txt", "2024/c03.txt", "c04.txt", "2024/c05.txt",
                            "page.html", "scan.pdf"}
    assert all(r["status"] == "succeeded" and r["chunks"] == 1 for r in records.values())
    assert records["page.html"]["data"]["parties"] == ["Offer", "From"]  # the simulator reads the text's words
    assert records["scan.pdf"]["data"]["title"] in "Umbrella supplies Acme"
    assert records["c00.txt"]["sources"]["parties"][0] == [{"chunk": 0, "start": 0, "end": 8, "exact": True}]
    errors = {r["id"]: r["error"]["code"] for r in read_jsonl(tmp_path / "out.errors.jsonl")}
    assert errors == {"empty.txt": "empty", "logo.png": "binary", "old.txt": "undecodable"}
    assert (progress.total, progress.succeeded, progress.invalid, progress.failed) == (11, 8, 3, 0)
    assert progress.chunks == 8 and progress.tokens > 0 and progress.cost_usd > 0


def _tierline_extract(worker: RunningWorker, source: Path, out: Path, schema: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": worker.url, "PYTHONPATH": str(ROOT)}
    command = [TIERLINE, "extract", str(source), "--schema", str(schema), "-o", str(out), "--window", "2",
               "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _interrupt_when(process: subprocess.Popen[bytes], out: Path, records: int) -> int:
    deadline = time.monotonic() + 60
    while not out.exists() or out.read_bytes().count(b"\n") < records:
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    return process.returncode


def test_an_interrupted_folder_run_run_again_writes_each_document_once_and_a_changed_one_again(
    worker: RunningWorker, tmp_path: Path
) -> None:
    # Given a folder of 12 documents (and 3 unreadable files), and calls of 100 ms
    worker.script(Script(default=Behaviour(latency_ms=100)))
    source, out = folder(tmp_path, 10), tmp_path / "out.jsonl"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    # When a run is interrupted after 4 documents, and the same command runs again to the end
    assert _interrupt_when(_tierline_extract(worker, source, out, schema), out, 4) == 130
    finish = _tierline_extract(worker, source, out, schema)
    log = finish.communicate(timeout=120)[0].decode()
    # Then each document is in OUT once, and each unreadable file in the errors file once
    assert finish.returncode == 1, log  # some files could not be read
    ids = Counter(r["id"] for r in read_jsonl(out))
    assert len(ids) == 12 and set(ids.values()) == {1}
    assert Counter(r["id"] for r in read_jsonl(tmp_path / "out.errors.jsonl")) == Counter(
        {"empty.txt": 1, "logo.png": 1, "old.txt": 1})
    # When one document changes and the command runs again
    (source / "c00.txt").write_text("Amended contract between Acme and Hooli.")
    again = _tierline_extract(worker, source, out, schema)
    log = again.communicate(timeout=120)[0].decode()
    # Then only that document is extracted again
    records = read_jsonl(out)
    assert len(records) == 13, log
    assert records[-1]["id"] == "c00.txt" and records[-1]["data"]["parties"] == ["Amended", "contract"]
    assert Counter(r["id"] for r in read_jsonl(tmp_path / "out.errors.jsonl"))["empty.txt"] == 1


def test_a_jsonl_of_documents_runs_from_python_and_repeated_ids_reject_it_before_sending(
    worker: RunningWorker, tmp_path: Path
) -> None:
    worker.script(Script())
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text('{"id": "a", "text": "Acme"}\n{"id": "b", "text": "Globex"}\n{"id": "a", "text": "x"}\n')
    with pytest.raises(DuplicateCustomIds, match="'a' on lines 1, 3"):
        submit_documents(repeated, SCHEMA, app=worker.app)
    with pytest.raises(InvalidExtraction, match="invalid_schema"):
        submit_documents(repeated, {"type": "array"}, app=worker.app)
    # Given a JSONL of two documents and a line without text
    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "a", "text": "Acme buys from Globex"}\n{"id": "b"}\n{"id": "c", "text": "Initech"}\n')
    # When it runs from Python
    with submit_documents(source, SCHEMA, app=worker.app, provenance=True) as handle:
        outcomes = {o.custom_id: o for o in handle.results()}
    # Then each line ends as a result or as its error, and the progress counts them
    assert outcomes["a"].result is not None and outcomes["a"].result.parsed["parties"] == ["Acme", "buys"]
    assert outcomes["a"].result.sources is not None
    assert outcomes["b"].error is not None and outcomes["b"].error.code == "invalid_document"
    assert outcomes["c"].ok
    assert (handle.progress.total, handle.progress.succeeded, handle.progress.invalid) == (3, 2, 1)
