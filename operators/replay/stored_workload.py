"""Requests from tierline's own finished jobs: the JobResults in the Redis result backend.

A request per stored result finished within the window: it arrived when the job started
(finished minus its latency), its routed token count and its answer's output tokens.
What a stored result does not hold: the job's category (JobResult carries no metadata:
every request is uncategorised) and its output budget (taken as 1024 or the answer's
length). Results are read with SCAN and MGET in batches; only three numbers per result are
kept, sorted by start time (results expire after a day, which bounds them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import redis

from operators.replay.workload import DEFAULT_OUTPUT_BUDGET, Request, WorkloadError
from results import Stored

RESULT_KEYS = "celery-task-meta-*"
_BATCH = 500
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, None: 1}


def window_s(text: str) -> float:
    """Seconds of a window written "90s", "30m", "2h", "1d" or plain seconds."""
    match = _WINDOW.match(text)
    if not match:
        raise WorkloadError(f"window {text!r}: use e.g. 30m, 2h, 1d or seconds")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def read_stored(url: str, *, since_s: float, now: float) -> Iterator[Request]:
    """Requests of the jobs stored at `url` that finished in the last `since_s` seconds before `now`."""
    client = redis.Redis.from_url(url)
    found: list[tuple[float, int, int]] = []
    try:
        keys: list[bytes] = []
        for key in client.scan_iter(match=RESULT_KEYS, count=1000):
            keys.append(key)
            if len(keys) == _BATCH:
                found += _requests(client.mget(keys), now - since_s)
                keys = []
        if keys:
            found += _requests(client.mget(keys), now - since_s)
    except redis.RedisError as exc:
        raise WorkloadError(f"stored results at the result backend: {exc}") from exc
    finally:
        client.close()
    found.sort()
    for at, tokens_in, tokens_out in found:
        yield Request(at, tokens_in, tokens_out, None, max(DEFAULT_OUTPUT_BUDGET, tokens_out))


def _requests(raws: list[bytes | str | None], after_s: float) -> Iterator[tuple[float, int, int]]:
    for raw in raws:
        if raw is None:
            continue
        try:
            meta = json.loads(raw)
            result = Stored(str(meta.get("status")), meta.get("result")).ended()  # failed jobs too
            if result is None:
                continue
            done = datetime.fromisoformat(str(meta["date_done"]))
        except (ValueError, KeyError, TypeError):
            continue  # not a tierline result (another app's task, a torn value)
        done_s = (done if done.tzinfo else done.replace(tzinfo=UTC)).timestamp()
        if done_s < after_s or not result.attempts:  # no attempt: an invalid job, never routed
            continue
        answered = any(a.outcome == "ok" for a in result.attempts)
        yield done_s - result.latency_ms / 1000, result.routed_tokens, result.answer_tokens[1] if answered else 0
