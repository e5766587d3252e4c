"""Everything that runs inside a tierline worker process.

`celery -A worker worker` finds the app in `worker.celery`; importing this package
alone builds nothing.
"""
