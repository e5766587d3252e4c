"""A producer waiting on a job's result sees it once it is stored: notice or no notice,
Redis restarted or not."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from contract.names import TASK_COMPLETE
from contract.schemas import JobResult
from operators.embedded import PrivateRedis
from producers.client import JobHandle, producer_app_for
from tests.producers.wait_across_restart import OUTAGE_S, across_restart
from tests.support import ROOT, SHORT_RECONNECT
from worker.shown_results import stored


def _store_without_notice(app: Celery, job_id: str) -> None:
    """The job's result stored as Celery's backend stores it, without its PUBLISH."""
    backend = app.backend
    result = stored(JobResult(job_id=job_id, status="succeeded", content="done"), redact=False)
    meta = {**backend._get_result_meta(result, "SUCCESS", None, None), "task_id": job_id}
    backend.client.set(backend.get_key_for_task(job_id), backend.encode(meta))


def test_a_result_whose_notice_is_lost_is_still_seen_by_the_waiting_producer(tmp_path: Path) -> None:
    # Given a producer waiting on a job it sent (subscribed to its result's notice), and the
    # job's result stored 1 s later without that notice reaching it, as when the
    # subscription was down across a Redis restart at the moment the worker stored it
    with PrivateRedis(appendonly=False, folder=tmp_path) as server:
        app = producer_app_for(server.url, server.url)
        try:
            app.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id="lost-notice")
            store = threading.Timer(1.0, _store_without_notice, (app, "lost-notice"))
            store.start()
            began = time.monotonic()
            handed = JobHandle("lost-notice", app).result(timeout=30)
            waited = time.monotonic() - began
        finally:
            store.join()
            app.close()
    # Then the wait reads it within seconds, not at its timeout
    assert handed.ok and handed.content == "done", handed
    assert 1.0 <= waited < 8, waited


@pytest.mark.parametrize("listener", ["thread", "gevent"])
def test_a_wait_goes_on_across_a_redis_restart_longer_than_celerys_reconnect(tmp_path: Path, listener: str) -> None:
    # Given a producer waiting on a job, and Redis stopped for 5 s during the wait, longer
    # than Celery's result consumer keeps reconnecting (shortened here from ~20 s to a few
    # tries: it then gives up with a RuntimeError), the result stored once Redis is back;
    # in a plain process, or in a gevent one, whose listener dies when it gives up
    if listener == "thread":
        handed, waited = across_restart(tmp_path)
    else:
        run = subprocess.run([sys.executable, "-m", "tests.producers.wait_across_restart", "--gevent", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        handed, waited = JobResult.model_validate(out["result"]), out["waited"]
    # Then the wait rides the outage out and hands over the result once it is stored
    assert handed.ok and handed.content == "done", handed
    assert OUTAGE_S + 0.5 <= waited < 15, waited


def test_a_wait_whose_password_is_refused_fails_at_once(tmp_path: Path) -> None:
    # Given a producer whose results' Redis refuses its password: a setting to fix, no outage
    with PrivateRedis(appendonly=False, folder=tmp_path, password="right") as server:
        wrong = server.url.replace(":right@", ":wrong@")
        app = producer_app_for(wrong, wrong)
        app.conf.result_backend_transport_options = SHORT_RECONNECT
        began = time.monotonic()
        try:
            # Then its wait fails with Celery's error, caused by the refusal, not at its timeout
            with pytest.raises((RuntimeError, redis.AuthenticationError)) as caught:
                JobHandle("refused-1", app).result(timeout=30)
        finally:
            app.close()
    refusal = caught.value.__cause__ if isinstance(caught.value, RuntimeError) else caught.value
    assert isinstance(refusal, redis.AuthenticationError), repr(caught.value)
    assert time.monotonic() - began < 10
