"""The one Redis key both sides use: the marker a batch producer leaves for a collected result.

It lives on the result backend's Redis beside Celery's ``celery-task-meta-<id>`` results
and, like them, does not take the routing prefix. A batch producer that has written a
result to its output file deletes the stored result and sets this marker (a few bytes,
not the whole JobResult); a worker that meets a late duplicate of the job finds it and
ends the duplicate as ``duplicate`` without running it. The worker's own keys are listed
in `worker.keys`.
"""

from __future__ import annotations

COLLECTED_TTL_S = 86_400
COLLECTED_PREFIX = "tierline-collected-"


def collected(job_id: str) -> str:
    """The marker a batch producer leaves for a result it wrote out and deleted."""
    return f"{COLLECTED_PREFIX}{job_id}"
