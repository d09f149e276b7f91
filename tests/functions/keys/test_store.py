"""What both backends promise: writes seen at once by the writer and at the next refresh by
others, no lost write among concurrent writers, ended keys pruned after the retention period,
and a stale view refused (fail closed) while revalidation runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.errors import StorageUnavailableError
from functions.keys import (
    BucketKeys,
    KeyBackend,
    KeyRecord,
    KeySpec,
    KeyStore,
    KeyStoreConfigError,
    LocalKeys,
    Snapshot,
    key_store,
)
from functions.keys.backend import Change, Seen, T, Unchanged
from functions.keys.revalidation import Revalidation
from functions.settings import GatewaySettings, Settings
from functions.storage import S3Objects, StorageSettings
from functions.storage.objects import Blob, ObjectStore, WriteConflictError
from tests.s3 import s3_client

PEPPER = b"p" * 32
Backends = Callable[[], KeyBackend]


@pytest.fixture(params=["local", "s3"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    """A factory of backends that share one store: as separate processes would."""
    if request.param == "local":
        return lambda: LocalKeys(tmp_path / "state")
    storage: StorageSettings = request.getfixturevalue("s3_storage")
    return lambda: BucketKeys(S3Objects.from_settings(storage).scoped("keys"))


def store(backends: Backends, reload_s: float = 1.0) -> KeyStore:
    return KeyStore(backends(), PEPPER, reload_s=reload_s)


def test_a_write_is_seen_at_once_by_its_writer_and_at_the_next_refresh_by_others(
    backends: Backends,
) -> None:
    writer, reader = store(backends), store(backends)
    key, record = writer.create(KeySpec(tenant="acme", rpm=5))
    assert writer.lookup(key.encode()) == record
    assert reader.lookup(key.encode()) is None
    assert reader.refresh() and reader.lookup(key.encode()) == record
    new_key, new = reader.rotate(record.id)
    assert writer.refresh()
    assert writer.lookup(key.encode()) is None and writer.lookup(new_key.encode()) == new
    writer.revoke(new.id)
    assert reader.refresh() and reader.lookup(new_key.encode()) is None
    found = reader.find(new_key.encode())
    assert found is not None and found.revoked_at is not None  # told "revoked", not "unknown"


def test_writers_at_once_lose_nothing(backends: Backends) -> None:
    """Eight writers (each its own store, as eight gateways) create five keys each at once."""
    stores = [store(backends) for _ in range(8)]
    made: list[str] = []
    start = threading.Barrier(len(stores))

    def create_five(keys: KeyStore) -> None:
        start.wait()
        for _ in range(5):
            made.append(keys.create(KeySpec(tenant="acme"))[1].id)

    threads = [threading.Thread(target=create_five, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 40
    assert sorted(r.id for r in store(backends).records()) == sorted(made)


def ended(days_ago: int, **ends: datetime) -> KeyRecord:
    """A record made ``days_ago`` (plus a day) that ended as ``ends`` say (or will)."""
    return KeyRecord.model_validate(
        {
            "id": f"key_old{days_ago}",
            "tenant": "acme",
            "role": "member",
            "created_at": datetime.now(UTC) - timedelta(days=days_ago + 1),
            "display": "sk-enc-old",
            "digest": f"{days_ago}".ljust(64, "0"),
            **ends,
        }
    )


def test_keys_that_ended_before_the_retention_period_are_pruned_at_the_next_write(
    backends: Backends,
) -> None:
    backend = backends()
    keys = KeyStore(backend, PEPPER, retention=timedelta(days=30))
    long_revoked = ended(31, revoked_at=datetime.now(UTC) - timedelta(days=31))
    long_expired = ended(45, expires_at=datetime.now(UTC) - timedelta(days=45))
    lately_revoked = ended(2, revoked_at=datetime.now(UTC) - timedelta(days=2))
    live = ended(90, expires_at=datetime.now(UTC) + timedelta(days=1))
    # written before pruning existed, or by an operator's hand: the backend keeps them all
    written = [long_revoked, long_expired, lately_revoked, live]
    backend.update(lambda records: records.extend(written), Snapshot((), None))
    assert {r.id for r in keys.records()} == {
        long_revoked.id,
        long_expired.id,
        lately_revoked.id,
        live.id,
    }
    _, new = keys.create(KeySpec(tenant="acme"))
    assert {r.id for r in store(backends).records()} == {lately_revoked.id, live.id, new.id}


class Unreliable:
    """A backend whose storage can be made unreachable (a test double of an outage)."""

    def __init__(self, backend: KeyBackend) -> None:
        self.kind = backend.kind
        self._backend = backend
        self.broken = threading.Event()

    def load(self, version: str | None) -> Snapshot | Unchanged:
        if self.broken.is_set():
            raise StorageUnavailableError("The bucket is unreachable.")
        return self._backend.load(version)

    def update(
        self, change: Change[T], current: Snapshot, seen: Seen | None = None
    ) -> tuple[T, Snapshot]:
        return self._backend.update(change, current, seen)


def test_a_stale_view_refuses_stored_keys_until_a_refresh_succeeds(backends: Backends) -> None:
    backend = Unreliable(backends())
    keys = KeyStore(backend, PEPPER, reload_s=0.05, stale_after_s=0.3)
    key, _ = keys.create(KeySpec(tenant="acme"))
    broken = backend.broken

    async def scenario() -> None:
        await keys.start()
        try:
            assert keys.lookup(key.encode()) is not None and keys.health()["fresh"]
            broken.set()
            while True:  # the last good view serves until it is stale, then 503
                try:
                    keys.lookup(key.encode())
                except StorageUnavailableError as refused:
                    assert refused.status_code == 503 and refused.code == "storage_unavailable"
                    break
                await asyncio.sleep(0.02)
            health = keys.health()
            assert not health["fresh"] and health["failures"] > 0
            broken.clear()
            for _ in range(1000):  # the next refresh succeeds: the keys work again
                if keys.fresh:
                    break
                await asyncio.sleep(0.02)
            assert keys.lookup(key.encode()) is not None and keys.failures == 0
        finally:
            await keys.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert keys.lookup(key.encode()) is not None  # without revalidation, age does not matter


class Contended:
    """Bucket objects whose writes lose to (simulated) other writers while ``contended``."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self.contended = threading.Event()
        self.lost_twice = threading.Event()
        self.lost = 0

    def get(self, key: str, *, etag: str | None = None) -> Blob | Unchanged | None:
        return self._objects.get(key, etag=etag)

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, create: bool = False
    ) -> str:
        if self.contended.is_set():
            self.lost += 1
            if self.lost >= 2:
                self.lost_twice.set()
            raise WriteConflictError(key)
        return self._objects.put(key, data, if_match=if_match, create=create)

    def delete(self, key: str) -> None:
        self._objects.delete(key)

    def keys(self, prefix: str = "") -> list[str]:
        return self._objects.keys(prefix)

    def scoped(self, name: str) -> ObjectStore:
        return self._objects.scoped(name)


def test_a_write_waiting_behind_other_writers_keeps_the_view_fresh(
    s3_storage: StorageSettings,
) -> None:
    """A create that keeps losing the race holds the store's lock for seconds; the view must
    not go stale meanwhile (every request with a stored key would get a 503), and a key
    another gateway made in the meantime is seen by the reads the waiting write makes."""
    objects = Contended(S3Objects.from_settings(s3_storage).scoped("keys"))
    # stale after 1.5 s: more than the longest pause between a losing writer's attempts (1 s)
    keys = KeyStore(BucketKeys(objects), PEPPER, reload_s=0.05, stale_after_s=1.5)
    mine, _ = keys.create(KeySpec(tenant="acme"))
    elsewhere = KeyStore(BucketKeys(S3Objects.from_settings(s3_storage).scoped("keys")), PEPPER)

    async def scenario() -> None:
        await keys.start()
        try:
            objects.contended.set()
            waiting = asyncio.create_task(asyncio.to_thread(keys.create, KeySpec(tenant="b")))
            await asyncio.to_thread(objects.lost_twice.wait, 10)
            theirs, _ = await asyncio.to_thread(elsewhere.create, KeySpec(tenant="c"))
            started = time.monotonic()
            while time.monotonic() - started < 3.5:  # over twice stale_after_s
                assert keys.lookup(mine.encode()) is not None  # no 503: still fresh
                await asyncio.sleep(0.02)
            assert keys.lookup(theirs.encode()) is not None
            assert not waiting.done()
            objects.contended.clear()
            made, record = await asyncio.wait_for(waiting, 20)
            assert keys.lookup(made.encode()) == record
            assert {r.tenant for r in elsewhere.records()} == {"acme", "b", "c"}
        finally:
            objects.contended.clear()
            await keys.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 40))


def test_an_unknown_key_waits_for_a_fresher_view_while_revalidation_runs(
    backends: Backends,
) -> None:
    """A key made elsewhere works at once, not after up to reload_s (here a minute)."""
    gateway, elsewhere = store(backends, reload_s=60), store(backends)

    async def scenario() -> None:
        await gateway.start()
        try:
            key, record = await asyncio.to_thread(elsewhere.create, KeySpec(tenant="acme"))
            assert gateway.find(key.encode()) is None  # not in the view yet
            assert await gateway.resolve(key.encode()) == record
            assert await gateway.resolve(b"sk-enc-unknown") is None
        finally:
            await gateway.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_revalidation_reads_once_at_start_and_again_reload_s_later() -> None:
    """The start's read counts as the first: the next one is reload_s after it (or sooner,
    if a miss asks), not a second read at once. That second read made a gateway's start
    read its store twice, and could load a key created meanwhile before a miss asked."""
    reads: list[float] = []
    revalidation = Revalidation(lambda: reads.append(time.monotonic()), reload_s=5.0)

    async def scenario() -> None:
        await revalidation.start()
        try:
            await asyncio.sleep(0.3)
            assert len(reads) == 1  # no second read before reload_s
            await revalidation.fresher()  # a miss asks: one more read, begun after it
            assert len(reads) == 2
        finally:
            await revalidation.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_the_bucket_holds_one_index_and_no_pepper(s3_storage: StorageSettings) -> None:
    keys = KeyStore(BucketKeys(S3Objects.from_settings(s3_storage).scoped("keys")), PEPPER)
    key, _ = keys.create(KeySpec(tenant="acme"))
    bucket, prefix = s3_storage.location()
    client = s3_client(s3_storage.s3_endpoint or "")
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"{prefix}/keys/index.json"]
    stored = client.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read()
    assert PEPPER not in stored and key.encode() not in stored and key[11:].encode() not in stored


def test_a_bucket_s_key_store_needs_the_pepper_from_settings(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with pytest.raises(KeyStoreConfigError, match="ENCLAVE_GATEWAY_KEY_PEPPER"):
        key_store(Settings(data_dir=data, storage=s3_storage))
    peppered = GatewaySettings(key_pepper="q" * 32, key_retention_days=7)
    keys = key_store(Settings(data_dir=data, storage=s3_storage, gateway=peppered))
    keys.create(KeySpec(tenant="acme"))
    assert keys.health()["backend"] == "s3" and keys.pepper == b"q" * 32
    assert not data.exists()  # no pepper file, no keys.json: nothing local
