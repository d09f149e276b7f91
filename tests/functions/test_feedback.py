"""The feedback store: tenant scope, one rating per caller, a bounded request index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from functions.feedback import FeedbackRequest, FeedbackStore, store_path


def rating(request_id: str, value: int) -> FeedbackRequest:
    return FeedbackRequest(request_id=request_id, rating=value)


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(store_path(tmp_path / "audit"), window_days=1)


def test_the_store_lies_beside_the_audit_log(tmp_path: Path) -> None:
    assert store_path(tmp_path / "audit") == tmp_path / "feedback.sqlite3"


def test_only_the_requests_tenant_can_rate(store: FeedbackStore) -> None:
    store.remember("acme", "r1", "chat", "b")
    assert not store.rate("globex", "key-g", rating("r1", 1), None)
    assert not store.rate("acme", "key-a", rating("unknown", 1), None)
    assert store.rate("acme", "key-a", rating("r1", 1), "nice")
    (only,) = store.ratings()
    assert (only.tenant, only.rater, only.experiment, only.variant) == (
        "acme",
        "key-a",
        "chat",
        "b",
    )


def test_a_reused_id_in_another_tenant_takes_nothing_away(store: FeedbackStore) -> None:
    """Request ids are the caller's to choose: another tenant sending the same one
    neither overwrites nor reveals the first tenant's request."""
    store.remember("acme", "shared", None, None)
    store.remember("globex", "shared", "chat", "a")
    assert store.rate("acme", "key-a", rating("shared", -1), None)
    assert store.rate("globex", "key-g", rating("shared", 1), None)
    by_tenant = {r.tenant: (r.rating, r.variant) for r in store.ratings()}
    assert by_tenant == {"acme": (-1, None), "globex": (1, "a")}


def test_a_second_rating_by_the_same_caller_replaces_the_first(store: FeedbackStore) -> None:
    store.remember("acme", "r1", "chat", "a")
    store.rate("acme", "key-a", rating("r1", -1), "bad")
    store.rate("acme", "key-a", rating("r1", 1), None)
    store.rate("acme", "key-b", rating("r1", -1), None)
    kept = {(r.rater, r.rating, r.comment) for r in store.ratings(experiment="chat")}
    assert kept == {("key-a", 1, None), ("key-b", -1, None)}
    assert store.ratings(experiment="other") == [] and store.ratings(tenant="globex") == []


def test_ratings_survive_a_new_process(tmp_path: Path) -> None:
    path = store_path(tmp_path / "audit")
    first = FeedbackStore(path)
    first.remember("acme", "r1", None, None)
    assert first.rate("acme", "k", rating("r1", 1), None)
    first.close()
    assert [r.request_id for r in FeedbackStore(path).ratings()] == ["r1"]


def test_the_index_forgets_requests_past_the_window(
    store: FeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.remember("acme", "old", None, None)
    later = time.time() + 2 * 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    store._remembered = 0  # the next one prunes
    store.remember("acme", "new", None, None)
    assert not store.rate("acme", "k", rating("old", 1), None)
    assert store.rate("acme", "k", rating("new", 1), None)
