"""Conditional reads and writes against a real S3-compatible server (moto, on 127.0.0.1)."""

from __future__ import annotations

import threading

import pytest

from functions.errors import StorageUnavailableError
from functions.storage import S3Objects, StorageSettings, WriteConflictError
from functions.storage.objects import UNCHANGED, Blob


def test_create_only_once_and_replace_only_what_was_read(s3_storage: StorageSettings) -> None:
    store = S3Objects.from_settings(s3_storage).scoped("keys")
    first = store.put("index.json", b"one", create=True)
    with pytest.raises(WriteConflictError):
        store.put("index.json", b"two", create=True)
    second = store.put("index.json", b"three", if_match=first)
    with pytest.raises(WriteConflictError):
        store.put("index.json", b"four", if_match=first)  # a stale version loses
    assert store.get("index.json") == Blob(b"three", second)
    assert store.get("index.json", etag=second) is UNCHANGED
    assert store.get("missing.json") is None


def test_keys_are_scoped_and_listed_in_order(s3_storage: StorageSettings) -> None:
    root = S3Objects.from_settings(s3_storage)
    audit = root.scoped("audit")
    for name in ("b/2", "a/1", "b/10"):
        audit.put(name, b"x")
    root.scoped("keys").put("index.json", b"{}")
    assert audit.keys() == ["a/1", "b/10", "b/2"]
    assert audit.keys("b/") == ["b/10", "b/2"]
    assert sorted(root.keys()) == ["audit/a/1", "audit/b/10", "audit/b/2", "keys/index.json"]
    audit.delete("a/1")
    assert audit.keys() == ["b/10", "b/2"]


def test_concurrent_creators_one_wins_per_key(s3_storage: StorageSettings) -> None:
    store = S3Objects.from_settings(s3_storage)
    won: list[int] = []

    def create(n: int) -> None:
        try:
            store.put("chain/000001", str(n).encode(), create=True)
            won.append(n)
        except WriteConflictError:
            pass

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    blob = store.get("chain/000001")
    assert isinstance(blob, Blob) and blob.data == str(won[0]).encode()


def test_an_unreachable_bucket_is_a_503_not_a_crash(s3_storage: StorageSettings) -> None:
    missing = s3_storage.model_copy(update={"uri": "s3://no-such-bucket-here/x"})
    with pytest.raises(StorageUnavailableError, match="NoSuchBucket") as refused:
        S3Objects.from_settings(missing).put("k", b"v")
    assert "no-such-bucket-here" not in refused.value.message  # callers learn no bucket name
    gone = s3_storage.model_copy(update={"s3_endpoint": "http://127.0.0.1:9", "s3_timeout_s": 1})
    with pytest.raises(StorageUnavailableError) as caught:
        S3Objects.from_settings(gone).get("k")
    assert caught.value.status_code == 503
