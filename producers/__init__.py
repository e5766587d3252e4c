"""The client side of tierline: submit jobs by task name, read their results.

A backend service needs this package and a broker URL, not the worker's code or keys.
"""

from producers.client import JobHandle, submit
from producers.extraction import submit_extraction

__all__ = ["JobHandle", "submit", "submit_extraction"]
