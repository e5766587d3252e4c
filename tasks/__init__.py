"""Celery task definitions and the job/result schemas (the producer-worker contract).

Importing this package does not import the worker: producers use `tasks.schemas`.
"""
