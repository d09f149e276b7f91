"""What rate limiting adds to one request: ``admit`` + ``settle``, per limit backend.

Each request is limited per key and per tenant on all three limits (RPM, TPM,
daily tokens): one atomic ``acquire`` over six buckets, then one ``charge`` over
four to reconcile the estimate with the usage. Limits are high enough never to
refuse. ``unlimited`` is the baseline: no limits configured, no store call.

A round runs ``BATCH`` sequential requests in one event loop; figures are per
request. ``concurrent_us_per_req`` runs ``CONCURRENCY`` requests at once, the
way a busy gateway process calls it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import report
from functions.ratelimit import (
    FileStore,
    Limits,
    LimitStore,
    MemoryStore,
    RateLimiter,
    RateLimitSettings,
)
from functions.ratelimit.redis import RedisStore
from tests.functions.ratelimit.conftest import redis_url as redis_url

BATCH = 200
CONCURRENCY = 32
HIGH = Limits(rpm=10**9, tpm=10**12, daily_tokens=10**15)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> LimitStore:
    if backend == "file":
        return FileStore(tmp_path / "ratelimit.sqlite3")
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisStore(url, prefix=f"bench:{uuid.uuid4().hex}:")
    return MemoryStore()


async def one_request(limiter: RateLimiter) -> None:
    admission = await limiter.admit("3f2a9c0d1e4b", "acme", estimated_tokens=100)
    await admission.settle(60)


async def batch(limiter: RateLimiter) -> None:
    for _ in range(BATCH):
        await one_request(limiter)


async def concurrent(limiter: RateLimiter, total: int) -> float:
    """Seconds for ``total`` requests with ``CONCURRENCY`` in flight."""
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def guarded() -> None:
        async with semaphore:
            await one_request(limiter)

    start = time.perf_counter()
    await asyncio.gather(*(guarded() for _ in range(total)))
    return time.perf_counter() - start


@pytest.mark.parametrize("backend", ["unlimited", "memory", "file", "redis"])
def test_admit_and_settle_cost(
    benchmark: Any,
    backend: str,
    loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    limits = Limits() if backend == "unlimited" else HIGH
    settings = RateLimitSettings(key_limits=limits, tenant_limits=limits)
    limiter = RateLimiter(settings, make_store(backend, tmp_path, request))
    try:
        loop.run_until_complete(batch(limiter))  # connect, create the buckets, warm caches
        benchmark.pedantic(lambda: loop.run_until_complete(batch(limiter)), rounds=15)
        total = BATCH * 5
        concurrent_s = loop.run_until_complete(concurrent(limiter, total))
    finally:
        loop.run_until_complete(limiter.aclose())
    stats = benchmark.stats.stats
    report(
        benchmark,
        f"rate limit {backend}",
        median_us_per_req=stats.median * 1e6 / BATCH,
        mean_us_per_req=stats.mean * 1e6 / BATCH,
        concurrent_us_per_req=concurrent_s * 1e6 / total,
    )
