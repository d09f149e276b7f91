"""Every feedback store keeps the same rules: tenant scope, one rating per caller,
a bounded request index. Each backend is the real thing: a SQLite file, moto's S3
server with a memory index, and the same bucket with a real redis-server's index."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from functions.errors import StorageUnavailableError
from functions.feedback import (
    FeedbackRequest,
    FeedbackStore,
    RatingsReader,
    SQLiteFeedback,
    feedback_store,
    ratings_reader,
    store_path,
)
from functions.feedback.bucket import BucketFeedback, BucketRatings, rating_key
from functions.feedback.index import MemoryIndex
from functions.feedback.model import DAY_S
from functions.feedback.redis import RedisIndex
from functions.settings import Settings
from functions.storage import S3Objects, StorageSettings
from tests.conftest import free_port

T = TypeVar("T")
BACKENDS = ["sqlite", "bucket+memory", "bucket+redis"]


def rating(request_id: str, value: int) -> FeedbackRequest:
    return FeedbackRequest(request_id=request_id, rating=value)


@dataclass
class Stores:
    """One backend: its gateway side and its reader side (several may share it)."""

    make: Callable[[], FeedbackStore]
    reader: Callable[[], RatingsReader]

    def run(self, script: Callable[[FeedbackStore], Awaitable[T]]) -> T:
        """``script`` with a fresh gateway-side store, in its own event loop."""

        async def main() -> T:
            store = self.make()
            try:
                return await script(store)
            finally:
                await store.aclose()

        return asyncio.run(main())

    def remember(self, *answers: tuple[str, str, str | None, str | None]) -> None:
        async def script(store: FeedbackStore) -> None:
            for answer in answers:
                await store.remember(*answer)

        self.run(script)

    def rate(self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None) -> bool:
        return self.run(lambda store: store.rate(tenant, rater, body, comment))


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    if request.param == "sqlite":
        path = store_path(tmp_path / "audit")
        return Stores(lambda: SQLiteFeedback(path, window_days=1), lambda: SQLiteFeedback(path))
    storage: StorageSettings = request.getfixturevalue("s3_storage")
    objects = S3Objects.from_settings(storage).scoped("feedback")
    if request.param == "bucket+memory":
        index = MemoryIndex(DAY_S)  # one process's: every store made here shares it
        return Stores(
            lambda: BucketFeedback(BucketRatings(objects), index), lambda: BucketRatings(objects)
        )
    url, prefix = request.getfixturevalue("redis_url"), f"test:{uuid.uuid4().hex}:"
    return Stores(
        lambda: BucketFeedback(BucketRatings(objects), RedisIndex(url, prefix, DAY_S)),
        lambda: BucketRatings(objects),
    )


def test_the_sqlite_store_lies_beside_the_audit_log(tmp_path: Path) -> None:
    assert store_path(tmp_path / "audit") == tmp_path / "feedback.sqlite3"


def test_only_the_requests_tenant_can_rate(stores: Stores) -> None:
    stores.remember(("acme", "r1", "chat", "b"))
    assert not stores.rate("globex", "key-g", rating("r1", 1), None)
    assert not stores.rate("acme", "key-a", rating("unknown", 1), None)
    assert stores.rate("acme", "key-a", rating("r1", 1), "nice")
    (only,) = stores.reader().ratings()
    assert (only.tenant, only.request_id, only.rater, only.rating, only.comment) == (
        "acme",
        "r1",
        "key-a",
        1,
        "nice",
    )
    assert (only.experiment, only.variant) == ("chat", "b")


def test_a_reused_id_in_another_tenant_takes_nothing_away(stores: Stores) -> None:
    """Request ids are the caller's to choose: another tenant sending the same one
    neither overwrites nor reveals the first tenant's request."""
    stores.remember(("acme", "shared", None, None), ("globex", "shared", "chat", "a"))
    assert stores.rate("acme", "key-a", rating("shared", -1), None)
    assert stores.rate("globex", "key-g", rating("shared", 1), None)
    by_tenant = {r.tenant: (r.rating, r.variant) for r in stores.reader().ratings()}
    assert by_tenant == {"acme": (-1, None), "globex": (1, "a")}
    assert [r.tenant for r in stores.reader().ratings(tenant="globex")] == ["globex"]


def test_a_reused_id_in_the_same_tenant_names_the_latest_answer(stores: Stores) -> None:
    stores.remember(("acme", "r1", "chat", "a"), ("acme", "r1", "chat", "b"))
    assert stores.rate("acme", "key-a", rating("r1", 1), None)
    assert [r.variant for r in stores.reader().ratings()] == ["b"]


def test_a_second_rating_by_the_same_caller_replaces_the_first(stores: Stores) -> None:
    stores.remember(("acme", "r1", "chat", "a"))
    stores.rate("acme", "key-a", rating("r1", -1), "bad")
    stores.rate("acme", "key-a", rating("r1", 1), None)
    stores.rate("acme", "key-b", rating("r1", -1), None)
    reader = stores.reader()
    kept = {(r.rater, r.rating, r.comment) for r in reader.ratings(experiment="chat")}
    assert kept == {("key-a", 1, None), ("key-b", -1, None)}
    assert reader.ratings(experiment="other") == [] and reader.ratings(tenant="globex") == []
    assert [r.rater for r in reader.ratings()] == ["key-a", "key-b"]  # in the order given


def test_a_tenant_whose_name_starts_another_s_sees_only_its_own(stores: Stores) -> None:
    stores.remember(("acme", "r1", None, None), ("acme2", "r1", None, None))
    assert stores.rate("acme", "k", rating("r1", 1), None)
    assert stores.rate("acme2", "k", rating("r1", -1), None)
    assert [r.rating for r in stores.reader().ratings(tenant="acme")] == [1]


def test_ratings_survive_a_new_store(stores: Stores) -> None:
    """Another process (another container, with a bucket) reads what this one stored."""
    stores.remember(("acme", "r1", None, None))
    assert stores.rate("acme", "k", rating("r1", 1), None)
    assert [r.request_id for r in stores.reader().ratings()] == ["r1"]


def test_sqlite_index_forgets_requests_past_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteFeedback(store_path(tmp_path / "audit"), window_days=1)
    store.remember_now("acme", "old", None, None)
    later = time.time() + 2 * DAY_S
    monkeypatch.setattr(time, "time", lambda: later)
    store._remembered = 0  # the next one prunes
    store.remember_now("acme", "new", None, None)
    assert not store.rate_now("acme", "k", rating("old", 1), None)
    assert store.rate_now("acme", "k", rating("new", 1), None)


def test_memory_index_forgets_past_the_window_and_past_its_bound() -> None:
    now = [1_000.0]
    index = MemoryIndex(window_s=60, max_entries=3, clock=lambda: now[0])

    async def main() -> None:
        await index.remember("acme", "old", ("chat", "a"))
        now[0] += 61
        assert await index.lookup("acme", "old") is None  # past the window
        for n in range(4):
            await index.remember("acme", f"r{n}", (None, None))
        assert await index.lookup("acme", "r0") is None  # the oldest went first
        assert await index.lookup("acme", "r3") == (None, None)
        await index.remember("acme", "r1", ("chat", "b"))  # re-remembered: now the newest
        await index.remember("acme", "r4", (None, None))
        assert await index.lookup("acme", "r2") is None
        assert await index.lookup("acme", "r1") == ("chat", "b")

    asyncio.run(main())


def test_redis_index_keys_expire_with_the_window(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    index = RedisIndex(redis_url, prefix, window_s=2 * DAY_S)

    async def main() -> None:
        await index.remember("acme", "r1", ("chat", "a"))
        await index.aclose()

    asyncio.run(main())
    (key,) = redis.Redis.from_url(redis_url).keys(prefix + "*")
    assert key.decode() == f"{prefix}{b'acme'.hex()}:r1"
    assert 2 * DAY_S - 5 <= redis.Redis.from_url(redis_url).ttl(key) <= 2 * DAY_S


def test_bucket_ratings_are_one_object_per_tenant_request_and_rater(
    s3_storage: StorageSettings,
) -> None:
    objects = S3Objects.from_settings(s3_storage).scoped("feedback")
    stores = Stores(
        lambda: BucketFeedback(BucketRatings(objects), MemoryIndex(DAY_S)),
        lambda: BucketRatings(objects),
    )

    async def script(store: FeedbackStore) -> None:
        await store.remember("acme", "..", None, None)  # a legal request id
        assert await store.rate("acme", "sub|with/slash", rating("..", 1), None)
        assert await store.rate("acme", "sub|with/slash", rating("..", -1), None)

    stores.run(script)
    assert objects.keys() == [rating_key("acme", "..", "sub|with/slash")]
    assert ".." not in rating_key("acme", "..", "x").split("/")
    (only,) = stores.reader().ratings()
    assert (only.request_id, only.rater, only.rating) == ("..", "sub|with/slash", -1)


def test_an_unreachable_bucket_is_a_storage_error(s3_storage: StorageSettings) -> None:
    gone = s3_storage.model_copy(update={"uri": "s3://no-such-bucket/state"})
    objects = S3Objects.from_settings(gone).scoped("feedback")
    stores = Stores(
        lambda: BucketFeedback(BucketRatings(objects), MemoryIndex(DAY_S)),
        lambda: BucketRatings(objects),
    )

    async def script(store: FeedbackStore) -> None:
        await store.remember("acme", "r1", None, None)
        with pytest.raises(StorageUnavailableError):
            await store.rate("acme", "k", rating("r1", 1), None)

    stores.run(script)


def test_an_unreachable_redis_is_a_storage_error() -> None:
    index = RedisIndex(f"redis://127.0.0.1:{free_port()}/0", "test:", DAY_S, timeout_s=0.2)

    async def main() -> None:
        with pytest.raises(StorageUnavailableError):
            await index.remember("acme", "r1", (None, None))
        with pytest.raises(StorageUnavailableError):
            await index.lookup("acme", "r1")
        await index.aclose()

    asyncio.run(main())


def test_an_unwritable_sqlite_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SQLiteFeedback(tmp_path / "file" / "feedback.sqlite3")

    async def main() -> None:
        with pytest.raises(StorageUnavailableError):
            await store.remember("acme", "r1", None, None)

    asyncio.run(main())


def test_concurrent_answers_share_one_sqlite_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: 40 answers arriving together are remembered in a few transactions,
    each rateable once its remember() returns."""
    store = SQLiteFeedback(store_path(tmp_path / "audit"))
    batches: list[int] = []
    write = store._remember_rows

    def counted(rows: list[tuple[str, str, str | None, str | None, float]]) -> None:
        batches.append(len(rows))
        write(rows)

    monkeypatch.setattr(store, "_remember_rows", counted)

    async def main() -> None:
        await asyncio.gather(*(store.remember("acme", f"r{n}", None, None) for n in range(40)))
        rated = [await store.rate("acme", "k", rating(f"r{n}", 1), None) for n in range(40)]
        assert all(rated)
        await store.aclose()

    asyncio.run(main())
    assert sum(batches) == 40
    assert len(batches) <= 2  # the first alone (an idle store commits at once), then the rest


def test_every_waiter_of_a_failed_sqlite_commit_gets_the_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SQLiteFeedback(tmp_path / "file" / "feedback.sqlite3")

    async def main() -> list[BaseException | None]:
        calls = (store.remember("acme", f"r{n}", None, None) for n in range(5))
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, StorageUnavailableError) for o in outcomes)


def test_an_unexpected_commit_failure_reaches_every_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only storage errors: whatever stops a group commit is each caller's to hear;
    none of them waits for ever."""
    store = SQLiteFeedback(store_path(tmp_path / "audit"))

    def broken(rows: list[tuple[str, str, str | None, str | None, float]]) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(store, "_remember_rows", broken)

    async def main() -> list[BaseException | None]:
        calls = (store.remember("acme", f"r{n}", None, None) for n in range(3))
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ValueError) for o in outcomes)


def test_the_settings_choose_the_backend(tmp_path: Path, s3_storage: StorageSettings) -> None:
    local = Settings(data_dir=tmp_path)
    assert isinstance(feedback_store(local, tmp_path / "audit"), SQLiteFeedback)
    assert ratings_reader(local, tmp_path / "audit") is None  # nothing was ever rated
    assert not (tmp_path / "feedback.sqlite3").exists()
    on_bucket = Settings(data_dir=tmp_path, storage=s3_storage)
    store = feedback_store(on_bucket, tmp_path / "audit")
    assert isinstance(store, BucketFeedback) and isinstance(store.index, MemoryIndex)
    assert isinstance(ratings_reader(on_bucket, tmp_path / "audit"), BucketRatings)
    shared = Settings(
        storage=s3_storage, gateway={"rate_limit": {"backend": "redis"}, "containers": 2}
    )
    store = feedback_store(shared, tmp_path / "audit")
    assert isinstance(store, BucketFeedback) and isinstance(store.index, RedisIndex)
    asyncio.run(store.aclose())
    assert list(tmp_path.iterdir()) == []  # nothing is connected, or written, until used
