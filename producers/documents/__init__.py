"""Bulk document extraction: a folder or a JSONL of documents through the workers.

`run_extraction(source, schema, output)` / `DocumentRun` run documents into an output
JSONL, resumable; `submit_documents` returns the handle of a run; `tierline extract
SOURCE --schema SCHEMA.json -o OUT.jsonl` is the command line.
"""

from producers.documents.run import DocumentRun, InvalidExtraction, run_extraction, submit_documents

__all__ = ["DocumentRun", "InvalidExtraction", "run_extraction", "submit_documents"]
