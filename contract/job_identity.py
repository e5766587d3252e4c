"""One id, one job: a job's task id (namespaced by its tenant) and the fingerprint of its payload.

Part of the contract (stdlib only): producers and workers compute both the same way.

- A job with a ``tenant`` runs under the task id ``tenant:<tenant>:<job_id>``, so two
  tenants that choose the same job id get two jobs and two results. A job without one
  runs under its job id, which may not start with ``tenant:``. The worker refuses a job
  whose task id is not the one its tenant gives (``tenant_mismatch``).
- The fingerprint (SHA-256 of the payload's canonical JSON) is stored with the result. A
  job id sent again with the same payload gets the stored result; with a different one
  it ends ``conflict`` for its sender, and the stored result is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import re

TENANT_PREFIX = "tenant:"
TENANT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_TENANT = re.compile(TENANT_PATTERN)


def task_id(job_id: str, tenant: str | None) -> str:
    """The Celery task id (and result key) of job `job_id` of `tenant` (None: no tenant)."""
    return job_id if tenant is None else f"{TENANT_PREFIX}{tenant}:{job_id}"


def tenant_problem(task_id_: str, tenant: object) -> str | None:
    """Why a job of `tenant` may not run under `task_id_`; None when it may."""
    if tenant is None:
        if task_id_.startswith(TENANT_PREFIX):
            return f"job ids starting with {TENANT_PREFIX!r} belong to tenants: this job names none"
        return None
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        return "tenant must be 1-64 letters, digits, '.', '_' or '-'"
    if not task_id_.startswith(f"{TENANT_PREFIX}{tenant}:"):
        return f"the job's id is not in tenant {tenant!r}'s namespace"
    return None


def fingerprint(payload: object) -> str:
    """SHA-256 of `payload` as canonical JSON (sorted keys, ASCII): the same on both sides of
    the broker, whatever order or escaping the JSON travelled in."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
