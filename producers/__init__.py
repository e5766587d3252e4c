"""The client side of tierline: submit jobs by task name, read their results.

A backend service needs this package and a broker URL, not the worker's code or keys.
"""

from producers.client import JobHandle, submit

__all__ = ["JobHandle", "submit"]
