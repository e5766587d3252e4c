"""The Celery task bodies: validate the job, call the worker's router, record the result.

The job and result schemas they speak are the contract's (`contract`).
"""
