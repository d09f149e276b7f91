"""The key store on a local directory: HMAC-only storage, lookup, expiry, revocation across
processes, rotation, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.errors import InvalidRequestError, PermissionDeniedError, RouteNotFoundError
from functions.keys import (
    MAX_LIFETIME,
    KeyRecord,
    KeyRevokedError,
    KeySpec,
    KeyStore,
    LocalKeys,
    load_pepper,
    parse_duration,
)

PEPPER = b"p" * 32


def store(path: Path, reload_s: float = 0.05) -> KeyStore:
    return KeyStore(LocalKeys(path), PEPPER, reload_s=reload_s)


def test_a_created_key_is_found_and_only_its_hmac_is_stored(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, record = keys.create(KeySpec(tenant="acme", role="member", models=["m1"], rpm=5))
    found = keys.lookup(key.encode())
    assert found is not None and found.id == record.id and found.rpm == 5
    on_disk = (tmp_path / "keys.json").read_text()
    assert key not in on_disk and key[len("sk-enc-") + 4 :] not in on_disk
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert keys.lookup(b"sk-enc-unknown") is None


def test_a_different_pepper_finds_nothing(tmp_path: Path) -> None:
    key, _ = store(tmp_path).create(KeySpec(tenant="acme"))
    other = KeyStore(LocalKeys(tmp_path), b"q" * 32)
    assert other.refresh() and other.lookup(key.encode()) is None


def test_another_store_sees_a_change_at_its_next_refresh(tmp_path: Path) -> None:
    writer, reader = store(tmp_path), store(tmp_path)
    key, record = writer.create(KeySpec(tenant="acme"))
    assert reader.lookup(key.encode()) is None  # lookups never touch the disk
    assert reader.refresh() and reader.lookup(key.encode()) is not None
    writer.revoke(record.id)
    assert reader.lookup(key.encode()) is not None
    assert reader.refresh() and reader.lookup(key.encode()) is None


def test_rotation_revokes_the_old_key_and_keeps_the_policy(tmp_path: Path) -> None:
    keys = store(tmp_path)
    old_key, old = keys.create(KeySpec(tenant="acme", role="member", models=["m1"], tpm=99))
    new_key, new = keys.rotate(old.id)
    assert keys.lookup(old_key.encode()) is None
    found = keys.lookup(new_key.encode())
    assert found is not None and found.id == new.id != old.id
    assert (found.tenant, found.models, found.tpm) == ("acme", ["m1"], 99)


def test_an_expired_key_is_refused(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, record = keys.create(KeySpec(tenant="acme", expires="1m"))
    assert keys.lookup(key.encode()) is not None
    assert record.expires_at is not None
    assert not record.usable(datetime.now(UTC) + timedelta(minutes=2))


def test_unknown_ids_and_bad_durations_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RouteNotFoundError):
        store(tmp_path).revoke("key_nope")
    with pytest.raises(InvalidRequestError):
        parse_duration("forever")
    assert parse_duration("30d") == timedelta(days=30)


def test_the_pepper_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_pepper(tmp_path, None)
    assert load_pepper(tmp_path, None) == first and len(first) >= 32
    assert (tmp_path / "key_pepper").stat().st_mode & 0o777 == 0o600
    assert load_pepper(tmp_path, b"configured" * 2) == b"configured" * 2


@pytest.mark.parametrize("text", ["99999999d", "999999999m", "0d", "36601d", "1y", "-1d", "d"])
def test_a_lifetime_that_cannot_be_is_a_400(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        KeySpec(tenant="acme", expires=text)
    assert (refused.value.status_code, refused.value.param) == (400, "expires")
    assert not (tmp_path / "keys.json").exists()


def test_a_century_is_the_longest_lifetime() -> None:
    assert parse_duration(f"{MAX_LIFETIME.days}d") == MAX_LIFETIME
    assert parse_duration("90m") == timedelta(minutes=90)


def test_a_revoked_key_is_not_rotated(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, record = keys.create(KeySpec(tenant="acme"))
    keys.revoke(record.id)
    with pytest.raises(KeyRevokedError) as refused:
        keys.rotate(record.id)
    assert (refused.value.status_code, refused.value.code) == (409, "key_revoked")
    assert [r.id for r in keys.records()] == [record.id]
    assert keys.lookup(key.encode()) is None


def test_a_refusing_check_leaves_the_store_unchanged(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, record = keys.create(KeySpec(tenant="acme"))

    def refuse(found: KeyRecord) -> None:
        assert found.tenant == "acme"  # the record the store would write
        raise PermissionDeniedError("no")

    with pytest.raises(PermissionDeniedError):
        keys.rotate(record.id, check=refuse)
    with pytest.raises(PermissionDeniedError):
        keys.create(KeySpec(tenant="acme"), check=refuse)
    assert [r.id for r in keys.records()] == [record.id]
    assert keys.lookup(key.encode()) is not None
