"""A producer waiting on a job's result sees it once it is stored, notice or no notice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from contract.names import TASK_COMPLETE
from contract.schemas import JobResult
from operators.embedded import PrivateRedis
from producers.client import JobHandle, producer_app_for
from results.redis import RECHECK_S
from worker.shown_results import stored


def test_a_result_whose_notice_is_lost_is_still_seen_by_the_waiting_producer(tmp_path: Path) -> None:
    # Given a producer waiting on a job it sent (subscribed to its result's notice), and the
    # job's result stored without that notice reaching it, as when the subscription was down
    # across a Redis restart at the moment the worker stored it
    with PrivateRedis(appendonly=False, folder=tmp_path) as server:
        producer = producer_app_for(server.url, server.url)
        worker = producer_app_for(server.url, server.url)
        try:
            producer.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id="lost-notice")
            backend = worker.backend
            result = stored(JobResult(job_id="lost-notice", status="succeeded", content="done"), redact=False)
            meta = {**backend._get_result_meta(result, "SUCCESS", None, None), "task_id": "lost-notice"}
            store = threading.Timer(1.0, lambda: backend.client.set(  # Celery's SET, without its PUBLISH
                backend.get_key_for_task("lost-notice"), backend.encode(meta)))
            store.start()
            began = time.monotonic()
            handed = JobHandle("lost-notice", producer).result(timeout=30)
            waited = time.monotonic() - began
        finally:
            store.join()
            producer.close()
            worker.close()
    # Then the wait reads it within its recheck, not at its timeout
    assert handed.ok and handed.content == "done", handed
    assert 1.0 <= waited < 1.0 + RECHECK_S + 2, waited
