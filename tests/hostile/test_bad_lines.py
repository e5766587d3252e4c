"""Every bad line is an error line: text with no UTF-8 form, in a batch file and in a job."""

from __future__ import annotations

import json
from pathlib import Path

from contract.names import TASK_COMPLETE
from producers.batch import run_file
from producers.client import job_handle
from tests.support import RunningWorker

GOOD = {"custom_id": "good", "body": {"messages": [{"role": "user", "content": "hello"}]}}


def test_a_line_with_a_lone_surrogate_is_an_error_line_and_the_batch_goes_on(
    worker: RunningWorker, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    lone = '{"custom_id": "bad-\\ud800", "body": {"messages": [{"role": "user", "content": "x"}]}}'
    in_content = '{"custom_id": "bad-2", "body": {"messages": [{"role": "user", "content": "\\udfff"}]}}'
    source.write_text("\n".join([lone, json.dumps(GOOD), in_content, "\u00ff\u00fe{", ""]) + "\n")
    source.write_bytes(source.read_bytes() + b'{"custom_id": "raw", "body": {"x": "\xed\xa0\x80"}}\n')
    out = tmp_path / "out.jsonl"

    progress = run_file(source, out, app=worker.app)

    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["error"]["code"]) for e in errors] == [
        (1, "invalid_unicode"), (3, "invalid_unicode"), (4, "invalid_json"), (6, "invalid_unicode")]
    assert [json.loads(x)["custom_id"] for x in out.read_text().splitlines()] == ["good"]
    assert (progress.succeeded, progress.invalid) == (1, 4)


def test_a_job_with_a_lone_surrogate_fails_invalid_unicode(worker: RunningWorker) -> None:
    worker.app.send_task(TASK_COMPLETE, kwargs={"job": {"messages": [{"role": "user", "content": "a\ud800"}]}},
                         task_id="lone-surrogate-job")
    result = job_handle("lone-surrogate-job", app=worker.app).result(timeout=30)
    assert result.error is not None and result.error.code == "invalid_unicode"
