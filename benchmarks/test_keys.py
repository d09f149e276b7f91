"""What the key store costs: a lookup on the request path, one revalidation, a create with
2,000 keys (local file and bucket), the event loop's lag while one is written, and how
long a revocation takes to reach another process (moto's S3 server on 127.0.0.1).

The lookup is the only part on the request path; revalidation runs in a worker thread
every ``key_reload_s`` (1 s), so its latency is added to no request. Writes also run
in worker threads; the loop's lag during one is what other requests would feel.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import report
from functions.keys import BucketKeys, KeyBackend, KeySpec, KeyStore, LocalKeys, Snapshot
from functions.storage import S3Objects, StorageSettings
from tests.functions.keys.conftest import many_keys
from tests.s3 import s3_server as s3_server
from tests.s3 import s3_storage as s3_storage

PEPPER = b"p" * 32
KEYS = 2000
BATCH = 1000


def seeded(backend: KeyBackend, count: int = KEYS) -> KeyStore:
    records = many_keys(count)
    backend.update(lambda stored: stored.extend(records), Snapshot((), None))
    store = KeyStore(backend, PEPPER)
    assert store.refresh()
    return store


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], KeyBackend]:
    if request.param == "local":
        return lambda: LocalKeys(tmp_path)
    storage: StorageSettings = request.getfixturevalue("s3_storage")
    return lambda: BucketKeys(S3Objects.from_settings(storage).scoped("keys"))


def test_lookup_on_the_request_path(benchmark: Any, tmp_path: Path) -> None:
    store = seeded(LocalKeys(tmp_path))
    key, _ = store.create(KeySpec(tenant="acme"))
    token = key.encode()

    def batch() -> None:
        for _ in range(BATCH):
            store.lookup(token)

    benchmark(batch)
    per_us = benchmark.stats.stats.median / BATCH * 1e6
    report(benchmark, "key lookup (2,000 keys, in memory)", per_lookup_us=per_us)


def test_revalidation_unchanged(benchmark: Any, backend: Callable[[], KeyBackend]) -> None:
    store = seeded(backend())
    benchmark(store.refresh)
    report(
        benchmark,
        f"key revalidation, nothing changed ({store.health()['backend']}: fstat or a 304)",
        median_ms=benchmark.stats.stats.median * 1000,
    )


def test_create_with_2000_keys(benchmark: Any, backend: Callable[[], KeyBackend]) -> None:
    store = seeded(backend())
    benchmark.pedantic(lambda: store.create(KeySpec(tenant="acme")), rounds=10, iterations=1)
    report(
        benchmark,
        f"key create with 2,000 keys ({store.health()['backend']})",
        median_ms=benchmark.stats.stats.median * 1000,
    )


def test_event_loop_lag_during_a_create(benchmark: Any, tmp_path: Path) -> None:
    """The loop ticks every millisecond while a create with 2,000 keys runs in a thread,
    then for as long again with nothing running: the machine's own lag, for comparison."""
    store = seeded(LocalKeys(tmp_path))
    lags: dict[str, list[float]] = {"create": [], "idle": []}
    durations: list[float] = []

    async def ticking(during: str, work: Callable[[], Awaitable[object]]) -> float:
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                lags[during].append(time.perf_counter() - before - 0.001)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await work()
        done.set()
        await task
        return time.perf_counter() - started

    async def one() -> None:
        took = await ticking("create", lambda: asyncio.to_thread(store.create, KeySpec(tenant="a")))
        durations.append(took)
        await ticking("idle", lambda: asyncio.sleep(took))

    benchmark.pedantic(lambda: asyncio.run(one()), rounds=10, iterations=1)
    report(
        benchmark,
        "event loop lag during a local create (2,000 keys)",
        write_median_ms=statistics.median(durations) * 1000,
        lag_max_ms=max(lags["create"]) * 1000,
        lag_p99_ms=statistics.quantiles(lags["create"], n=100)[98] * 1000,
        idle_lag_max_ms=max(lags["idle"]) * 1000,
        idle_lag_p99_ms=statistics.quantiles(lags["idle"], n=100)[98] * 1000,
    )


def test_revocation_delay_to_another_process(benchmark: Any, s3_storage: StorageSettings) -> None:
    """Revoked through one store; seen by another that revalidates every 1 s (the default)."""

    def bucket() -> KeyBackend:
        return BucketKeys(S3Objects.from_settings(s3_storage).scoped("keys"))

    writer, reader = seeded(bucket(), 200), KeyStore(bucket(), PEPPER, reload_s=1.0)
    delays: list[float] = []

    async def one() -> None:
        key, record = await asyncio.to_thread(writer.create, KeySpec(tenant="acme"))
        await reader.start()
        try:
            assert await reader.resolve(key.encode()) is not None
            await asyncio.to_thread(writer.revoke, record.id)
            revoked = time.perf_counter()
            for _ in range(2000):  # 5 ms polls, 10 s at most
                if reader.lookup(key.encode()) is None:
                    break
                await asyncio.sleep(0.005)
            delays.append(time.perf_counter() - revoked)
            assert reader.lookup(key.encode()) is None
        finally:
            await reader.aclose()

    benchmark.pedantic(lambda: asyncio.run(one()), rounds=8, iterations=1)
    report(
        benchmark,
        "revocation delay to another process (key_reload_s 1 s, bucket)",
        median_ms=statistics.median(delays) * 1000,
        max_ms=max(delays) * 1000,
    )
