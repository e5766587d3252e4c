"""Live overlay: every change checked against the catalog, versioned in Redis, rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from worker import overlay as ov
from worker.catalog import Catalog, load_catalog
from worker.errors import OverlayError
from worker.keys import Keys
from worker.overlay_store import LiveOverlay, OverlayStore

SMALL, MEDIUM, LARGE = "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def store(idle_db_url: str) -> Iterator[OverlayStore]:
    client = redis.Redis.from_url(idle_db_url)
    yield OverlayStore(client, Keys("ov-test:"))
    client.close()


@pytest.mark.parametrize(("step", "reason"), [
    (lambda o: ov.drain(o, "gpt-9"), "unknown model 'gpt-9'"),
    (lambda o: ov.set_threshold(o, "small", 20_000), "max_tokens must increase"),
    (lambda o: ov.set_threshold(o, "huge", 10), "unknown tier 'huge'"),
    (lambda o: ov.set_weights(o, "small", {LARGE: 10}), "is not in tier 'small'"),
    (lambda o: ov.set_weights(o, "small", {SMALL: 0}), "add up to more than 0"),
    (lambda o: ov.drain(ov.drain(ov.drain(o, SMALL), MEDIUM), LARGE), "drain every model"),
    (lambda o: ov.set_limit(o, "nope", ov.RateLimit(rpm=5)), "unknown model 'nope'"),
])
def test_a_bad_change_is_refused_with_its_reason(step, reason: str, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OverlayError, match=reason):
        ov.effective(step(ov.EMPTY), catalog)


def test_a_threshold_change_moves_the_natural_tier(catalog: Catalog) -> None:
    moved = ov.effective(ov.set_threshold(ov.EMPTY, "small", 1_000), catalog)
    assert moved.natural_tier(2_000) == 1 and catalog.natural_tier(2_000) == 0


def test_changes_are_versioned_with_who_and_what_and_rolled_back(store: OverlayStore, catalog: Catalog) -> None:
    first = store.change(lambda o: ov.drain(o, SMALL), catalog, by="ana", what=f"drain {SMALL}")
    second = store.change(lambda o: ov.set_limit(o, LARGE, ov.RateLimit(rpm=60)), catalog, by="bo", what="limit")
    assert (first.number, second.number) == (1, 2)
    assert second.overlay.drained == (SMALL,) and second.overlay.limits[LARGE].rpm == 60
    back = store.rollback(0, catalog, by="ana")
    assert back.number == 3 and back.overlay == ov.EMPTY and back.change == "rollback to version 0"
    assert [(v.number, v.by) for v in store.history()] == [(0, "catalog file"), (1, "ana"), (2, "bo"), (3, "ana")]


def test_a_refused_change_stores_nothing(store: OverlayStore, catalog: Catalog) -> None:
    with pytest.raises(OverlayError):
        store.change(lambda o: ov.set_threshold(o, "medium", 100), catalog, by="ana", what="bad")
    assert store.current_number() == 0


def test_a_worker_keeps_the_last_good_overlay_when_a_version_does_not_fit(
    store: OverlayStore, catalog: Catalog, idle_db_url: str
) -> None:
    live = LiveOverlay(store, catalog)
    store.change(lambda o: ov.drain(o, SMALL), catalog, by="ana", what="drain")
    live.observe(1)
    assert live.current.overlay.drained == (SMALL,)
    live.observe(7)  # a version that is not stored (or unreadable): nothing changes
    assert live.current.number == 1
    live.observe(None)  # the routing-state read failed
    assert live.current.number == 1
