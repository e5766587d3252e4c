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
