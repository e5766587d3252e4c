"""A producer waits on a job across a Redis restart longer than Celery's reconnect.

Imported by the tests, or run as a script in a gevent-patched process (Celery's result
listener is then a greenlet), printing what the wait handed over as JSON:

    python -m tests.producers.wait_across_restart --gevent FOLDER
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--gevent" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from contract.names import TASK_COMPLETE  # noqa: E402
from contract.schemas import JobResult  # noqa: E402
from operators.embedded import PrivateRedis  # noqa: E402
from producers.client import JobHandle, producer_app_for  # noqa: E402
from tests.support import SHORT_RECONNECT  # noqa: E402
from worker.shown_results import stored  # noqa: E402

OUTAGE_S = 5.0


def across_restart(folder: Path) -> tuple[JobResult, float]:
    """Send a job, wait on it; 0.5 s in, Redis stops for OUTAGE_S (Celery's reconnect,
    shortened to a few tries, gives up meanwhile), starts again on its files, and the job's
    result is stored. The JobResult handed over, and the seconds waited."""
    server = PrivateRedis(appendonly=True, folder=folder).start()
    app = producer_app_for(server.url, server.url)
    app.conf.result_backend_transport_options = SHORT_RECONNECT

    def restart() -> None:
        time.sleep(0.5)
        server.stop()
        time.sleep(OUTAGE_S)
        server.start()
        app.backend.mark_as_done("restart-1", stored(JobResult(job_id="restart-1", status="succeeded",
                                                               content="done"), redact=False))

    outage = threading.Thread(target=restart)
    try:
        app.send_task(TASK_COMPLETE, kwargs={"job": {}}, task_id="restart-1")
        outage.start()
        began = time.monotonic()
        handed = JobHandle("restart-1", app).result(timeout=60)
        return handed, time.monotonic() - began
    finally:
        if outage.is_alive():
            outage.join()
        app.close()
        server.stop()


if __name__ == "__main__":
    handed, waited = across_restart(Path(sys.argv[-1]))
    print(json.dumps({"result": handed.model_dump(mode="json"), "waited": waited}))
