"""Batch files through the workers: OpenAI and Mistral batch lines in, results out.

`submit_batch(lines)` returns a `BatchHandle` (progress, and a results iterator);
`FileBatch` / `run_file` run a JSONL file into an output file, resumable;
`tierline batch run IN.jsonl -o OUT.jsonl` is the command line.
"""

from producers.batch.errors import BatchRejected, CorruptOutput, DuplicateCustomIds
from producers.batch.handle import BatchHandle, BatchProgress, submit_batch
from producers.batch.records import LineOutcome, output_record
from producers.batch.run import FileBatch, run_file

__all__ = [
    "BatchHandle", "BatchProgress", "BatchRejected", "CorruptOutput", "DuplicateCustomIds",
    "FileBatch", "LineOutcome", "output_record", "run_file", "submit_batch",
]
