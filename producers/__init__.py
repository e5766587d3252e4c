"""The client side of tierline: submit jobs by task name, read their results.

A backend service needs this package and a broker URL, not the worker's code or keys.
"""

from producers.batch import BatchHandle, submit_batch
from producers.client import JobHandle, submit
from producers.documents import run_extraction, submit_documents
from producers.extraction import submit_extraction

__all__ = [
    "BatchHandle", "JobHandle", "run_extraction", "submit", "submit_batch", "submit_documents", "submit_extraction",
]
