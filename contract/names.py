"""Task names and queues: producers send tasks by these names, workers consume these queues."""

from __future__ import annotations

TASK_COMPLETE = "tierline.complete"
TASK_EXTRACT = "tierline.extract"
# A document of several chunks: one task per chunk, then one merge under the document's id.
TASK_EXTRACT_CHUNK = "tierline.extract_chunk"
TASK_EXTRACT_MERGE = "tierline.extract_merge"
QUEUE_CONVERSATIONS = "conversations"
QUEUE_EXTRACTION = "extraction"

# Where each task goes: the producer's routes and the worker's must agree.
TASK_QUEUES = {
    TASK_COMPLETE: QUEUE_CONVERSATIONS, TASK_EXTRACT: QUEUE_EXTRACTION,
    TASK_EXTRACT_CHUNK: QUEUE_EXTRACTION, TASK_EXTRACT_MERGE: QUEUE_EXTRACTION,
}


def chunk_id(job_id: str, index: int) -> str:
    """The task id of chunk `index` (0-based) of document `job_id`: the same on every
    delivery, so a redelivered chunk finds its stored result."""
    return f"{job_id}:chunk:{index}"


def chunk_index(chunk_job_id: str) -> int:
    """The index `chunk_id` put in a chunk's task id."""
    return int(chunk_job_id.rsplit(":", 1)[-1])
