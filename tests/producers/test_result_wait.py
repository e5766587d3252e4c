"""A producer waiting on a job's result sees it once it is stored: notice or no notice,
Redis restarted or not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from celery import Celery

from contract.names import TASK_COMPLETE
from contract.schemas import JobResult
from operators.embedded import PrivateRedis
from producers.client import JobHandle, producer_app_for
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


def test_a_wait_goes_on_across_a_redis_restart_longer_than_celerys_reconnect(tmp_path: Path) -> None:
    # Given a producer waiting on a job, and Redis stopped for 5 s during the wait, longer
    # than Celery's result consumer keeps reconnecting (shortened here from ~20 s to a few
    # tries: it then gives up with a RuntimeError), the result stored once Redis is back
    server = PrivateRedis(appendonly=True, folder=tmp_path).start()
    app = producer_app_for(server.url, server.url)
    app.conf.result_backend_transport_options = {"retry_policy": {
        "max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}}

    def restart() -> None:
        time.sleep(0.5)
        server.stop()
        time.sleep(5)
        server.start()
        app.backend.mark_as_done("restart-1", stored(JobResult(job_id="restart-1", status="succeeded",
                                                               content="done"), redact=False))

    try:
        app.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id="restart-1")
        outage = threading.Thread(target=restart)
        outage.start()
        began = time.monotonic()
        handed = JobHandle("restart-1", app).result(timeout=60)
        waited = time.monotonic() - began
        outage.join()
    finally:
        app.close()
        server.stop()
    # Then the wait rides the outage out and hands over the result once it is stored
    assert handed.ok and handed.content == "done", handed
    assert 5.5 <= waited < 15, waited
