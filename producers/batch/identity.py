"""Deterministic job ids for batch lines: the custom_id is the idempotency key.

job id = uuid5(scope, custom_id, digest of the job the line asks for). The scope is the
batch's identity: the resolved input path for a file (so the same command on the same
file resumes), or what the caller names for lines given from Python ("" by default).
The job's digest is part of the id so that a *different* request under a reused
custom_id and path (tomorrow's file written over today's) never picks up a result the
worker still holds for the old one; the same request always maps to the same id, and the
worker answers a job id it already finished from its stored result, without a provider.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAMESPACE = uuid.UUID("6f0c6a39-2b7e-5d43-9c51-7a1e0b5f3d21")


def scope_of(path: Path) -> str:
    """The batch identity of an input file: its resolved path."""
    return str(path.resolve())


def job_id(scope: str, custom_id: str, job: Mapping[str, Any]) -> str:
    """The job id of line `custom_id` asking for `job` (a payload without job_id) in `scope`."""
    canonical = json.dumps(job, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
    return str(uuid.uuid5(NAMESPACE, f"{scope}\n{custom_id}\n{digest}"))
