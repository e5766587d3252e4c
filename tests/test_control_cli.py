"""`tierline control` and the live columns of `tierline models`, run as an operator runs them."""

from __future__ import annotations

from producers.client import submit
from tests.support import RunningWorker
from tests.test_cli import run

SMALL, MEDIUM = "mistral-small-latest", "mistral-medium-latest"
HELLO = [{"role": "user", "content": "Which tier serves me?"}]


def env(worker: RunningWorker) -> dict[str, str]:
    return {"REDIS_URL": worker.url, "TIERLINE_KEY_PREFIX": worker.prefix}


def test_drain_history_and_rollback_from_the_command_line(worker: RunningWorker) -> None:
    drained = run(["control", "drain", SMALL, "--by", "ana"], env(worker))
    assert drained.returncode == 0, drained.stderr
    assert "version 1: drain mistral-small-latest (by ana)" in drained.stdout
    assert submit(HELLO, app=worker.app).result(timeout=30).model == MEDIUM

    models = run(["models"], env(worker))
    small = next(line for line in models.stdout.splitlines() if SMALL in line and "drained" in line)
    assert "closed" in small

    history = run(["control", "history"], env(worker))
    assert "ana" in history.stdout and "drain mistral-small-latest" in history.stdout

    back = run(["control", "rollback", "0", "--by", "bo"], env(worker))
    assert "version 2: rollback to version 0 (by bo)" in back.stdout
    assert submit(HELLO, app=worker.app).result(timeout=30).model == SMALL


def test_a_change_that_breaks_the_catalog_is_refused_with_its_reason(worker: RunningWorker) -> None:
    out = run(["control", "set-threshold", "small", "50000"], env(worker))
    assert out.returncode == 2
    assert "refused" in out.stdout and "max_tokens must increase" in out.stdout
    weights = run(["control", "weights", "small", "mistral-large-latest=10"], env(worker))
    assert weights.returncode == 2 and "is not in tier 'small'" in weights.stdout
