"""The contract between producers and workers: a leaf that imports nothing else of tierline.

- `contract.schemas`: the job messages and the JobResult (pydantic, plain JSON on the wire).
- `contract.names`: the task names and queues producers send to by name.
- `contract.errors`: the root of the error tree and `InvalidJob`.
- `contract.keys`: the one Redis key both sides use (the batch `collected` marker).

Both sides import it; it imports only pydantic, jsonschema and the standard library.
"""
