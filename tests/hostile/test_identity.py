"""One id, one job: conflicting payloads, tenants, and sealed carries."""

from __future__ import annotations

import time

from contract import job_identity
from contract.names import TASK_COMPLETE, TASK_EXTRACT_CHUNK, chunk_id
from contract.schemas import Carry
from producers.client import job_handle, submit
from tasks.requeue import carried
from tests.support import RunningWorker
from worker import carry_seal
from worker.providers.simulated import Behaviour, Script

ASK = [{"role": "user", "content": "What is the capital of France?"}]
OTHER = [{"role": "user", "content": "Transfer all the money to account 99."}]
SMALL = "mistral-small-latest"


def test_the_same_id_with_the_same_payload_gets_the_stored_result(worker: RunningWorker) -> None:
    first = submit(ASK, app=worker.app, job_id="same-twice").result(timeout=30)
    again = submit(ASK, app=worker.app, job_id="same-twice").result(timeout=30)
    assert first.ok and again.ok
    assert again.content == first.content and again.fingerprint == first.fingerprint is not None


def test_a_reused_id_with_another_payload_ends_conflict_and_keeps_the_stored_result(worker: RunningWorker) -> None:
    first = submit(ASK, app=worker.app, job_id="reused-id").result(timeout=30)
    assert first.ok
    second = submit(OTHER, app=worker.app, job_id="reused-id").result(timeout=30)
    assert not second.ok and second.error is not None and second.error.code == "conflict"
    assert second.content is None
    kept = job_handle("reused-id", app=worker.app).result(timeout=30)
    assert kept.ok and kept.content == first.content and kept.fingerprint == first.fingerprint


def test_two_tenants_choosing_the_same_id_get_their_own_jobs(worker: RunningWorker) -> None:
    a = submit(ASK, app=worker.app, job_id="order-1", tenant="acme")
    b = submit(OTHER, app=worker.app, job_id="order-1", tenant="globex")
    assert (a.id, b.id) == ("tenant:acme:order-1", "tenant:globex:order-1")
    ra, rb = a.result(timeout=30), b.result(timeout=30)
    assert ra.ok and rb.ok and ra.fingerprint != rb.fingerprint
    assert job_handle("order-1", tenant="acme", app=worker.app).result(timeout=30).fingerprint == ra.fingerprint
    assert job_handle("order-1", tenant="globex", app=worker.app).result(timeout=30).fingerprint == rb.fingerprint


def test_a_job_cannot_write_into_another_tenants_namespace(worker: RunningWorker) -> None:
    cases = {"tenant:globex:x1": {"messages": ASK, "tenant": "acme"},
             "tenant:acme:x2": {"messages": ASK}}
    for task_id, job in cases.items():
        worker.app.send_task(TASK_COMPLETE, kwargs={"job": job}, task_id=task_id)
        result = job_handle(task_id, app=worker.app).result(timeout=30)
        assert result.error is not None and result.error.code == "tenant_mismatch", task_id


def test_a_forged_carry_is_refused(worker: RunningWorker) -> None:
    forged = {"level": 2, "min_tier": 2, "started_at": time.time(), "routed_tokens": 1}
    for n, carry in enumerate([forged, {**forged, "seal": "0" * 64}, "not a carry"]):
        task_id = f"forged-carry-{n}"
        worker.app.send_task(TASK_COMPLETE, kwargs={"job": {"messages": ASK}, "carry": carry}, task_id=task_id)
        result = job_handle(task_id, app=worker.app).result(timeout=30)
        assert result.error is not None and result.error.code == "forged_carry", carry
        assert result.attempts == []


def test_a_chunk_task_refuses_a_forged_carry_and_takes_a_sealed_one(worker: RunningWorker) -> None:
    # Given a chunk of a two-chunk document, sent by hand as its chord would send it
    chunk = {"document": "Acme Ltd and Bolt GmbH sign.", "chunk_index": 0, "chunk_total": 2, "chunk_start": 0,
             "start_tier": 0, "schema": {"type": "object", "properties": {"parties": {"type": "array"}}}}
    forged = {"level": 2, "min_tier": 2, "started_at": time.time(), "routed_tokens": 1}
    # When it comes with a carry no worker sealed, or sealed for another chunk
    for n, carry in enumerate([forged, {**forged, "seal": "0" * 64}, "not a carry"]):
        task_id = chunk_id(f"forged-chunk-{n}", 0)
        worker.app.send_task(TASK_EXTRACT_CHUNK, kwargs={"job": chunk, "carry": carry}, task_id=task_id)
        # Then the chunk fails forged_carry before any call
        result = job_handle(task_id, app=worker.app).result(timeout=30)
        assert result.error is not None and result.error.code == "forged_carry", carry
        assert result.attempts == []
    secret = worker.redis.get(worker.keys.carry_secret)
    assert secret  # what the workers seal with
    elsewhere = carry_seal.sealed(chunk_id("another-doc", 0), {**forged, "min_tier": 1}, secret)
    worker.app.send_task(TASK_EXTRACT_CHUNK, kwargs={"job": chunk, "carry": elsewhere}, task_id=chunk_id("moved", 0))
    moved = job_handle(chunk_id("moved", 0), app=worker.app).result(timeout=30)
    assert moved.error is not None and moved.error.code == "forged_carry"
    # while a carry sealed for this chunk is believed: it runs from the tier floor it carries
    genuine = carry_seal.sealed(chunk_id("sealed", 0), {**forged, "min_tier": 1}, secret)
    worker.app.send_task(TASK_EXTRACT_CHUNK, kwargs={"job": chunk, "carry": genuine}, task_id=chunk_id("sealed", 0))
    taken = job_handle(chunk_id("sealed", 0), app=worker.app).result(timeout=30)
    assert taken.ok, taken.error
    assert taken.tier == "medium" and [a.chunk for a in taken.attempts] == [0]


def test_a_genuine_escalation_carries_a_valid_seal(worker: RunningWorker) -> None:
    worker.script(Script(models={SMALL: Behaviour(poor_rate=1.0, poor="refusal")}))
    try:
        result = submit(ASK, app=worker.app).result(timeout=30)
    finally:
        worker.script(Script())
    assert result.ok and result.tier == "medium" and len(result.escalations) == 1
    assert worker.redis.get(worker.keys.carry_secret)  # generated once, shared by the workers


def test_seals_bind_the_carry_to_its_job() -> None:
    secret = b"k" * 32
    carry = {"level": 1, "started_at": 1.5, "attempts": []}
    sealed = carry_seal.sealed("job-1", carry, secret)
    assert carry_seal.opened("job-1", sealed, secret) == carry
    assert carry_seal.opened("job-2", sealed, secret) is None
    assert carry_seal.opened("job-1", {**sealed, "level": 2}, secret) is None
    assert carry_seal.opened("job-1", sealed, b"other") is None


def test_a_first_delivery_does_not_ask_redis_for_the_carry_secret() -> None:
    # The shared secret lives in Redis: asked by a first delivery, a Redis restart at that
    # moment failed the job before its (guarded) delivery read.
    def unreachable() -> bytes:
        raise AssertionError("a first delivery asked for the carry secret")

    fresh = carried("job-1", None, unreachable, deadline=time.monotonic() + 5)

    assert isinstance(fresh, Carry) and fresh.level == 0 and fresh.attempts == []
    secret = b"s" * 32
    sealed = carry_seal.sealed("job-1", Carry(started_at=1.0, level=1).model_dump(mode="json"), secret)
    escalated = carried("job-1", sealed, lambda: secret, deadline=time.monotonic() + 5)
    assert isinstance(escalated, Carry) and escalated.level == 1


def test_fingerprints_ignore_key_order_and_tenant_ids_are_namespaced() -> None:
    assert job_identity.fingerprint({"a": 1, "b": [1, 2]}) == job_identity.fingerprint({"b": (1, 2), "a": 1})
    assert job_identity.task_id("x", None) == "x" and job_identity.task_id("x", "t") == "tenant:t:x"
    assert job_identity.tenant_problem("tenant:t:x", "t") is None
    assert job_identity.tenant_problem("tenant:t:x", None) is not None
