"""Token debt is never forgiven, on every limit store (memory, SQLite file, real Redis).

A request that used more tokens than its admission estimate leaves its buckets
below zero. Before, an idle bucket's key expired after its *full-capacity* refill
time (61 s for TPM) and a day's budget lived under a key naming the day: either
way the next request found a fresh, full bucket and the debt was gone. Now the
TTL covers the debt's repayment and the daily budget carries it across midnight.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from functions.errors import RateLimitError
from functions.ratelimit import (
    BucketRequest,
    FileStore,
    Limits,
    LimitStore,
    MemoryStore,
    RateLimiter,
    RateLimitSettings,
)
from functions.ratelimit.redis import RedisStore
from tests.functions.ratelimit.conftest import (  # noqa: F401 (fixtures)
    BACKENDS,
    MIDNIGHT,
    Clock,
    redis_url,
)


@dataclass
class Backend:
    """One backend's stores (sharing buckets) and, for Redis, a way to read a key's TTL."""

    new: Callable[[], LimitStore]
    redis_url: str | None = None
    prefix: str = field(default_factory=lambda: f"security:{uuid.uuid4().hex}:")

    def ttl(self, key: str) -> int | None:
        """The TTL Redis holds for ``key``; None for the other stores."""
        if self.redis_url is None:
            return None
        with redis.Redis.from_url(self.redis_url) as client:
            return int(client.ttl(self.prefix + key))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        shared = MemoryStore()
        return Backend(lambda: shared)
    if request.param == "file":
        return Backend(lambda: FileStore(tmp_path / "ratelimit.sqlite3"))
    url = str(request.getfixturevalue("redis_url"))
    made = Backend(lambda: RedisStore(url, prefix=made.prefix), url)
    return made


def run(backend: Backend, test: Callable[[LimitStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = backend.new()
        try:
            await test(store)
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_tpm_debt_outlives_the_bucket_full_refill_time(
    backend: Backend,
) -> None:
    """Capacity 1 refilling 1/s used to expire 2 s after its last write, debt or not."""
    key = f"tpm-{uuid.uuid4().hex}"
    bucket = BucketRequest(key, capacity=1, refill_per_second=1, cost=1)

    async def test(store: LimitStore) -> None:
        start = time.time()  # Redis expires by its own clock: the test uses the real one
        assert (await store.acquire([bucket], start)).allowed
        await store.charge([bucket.with_cost(1000)], start)  # used 1000 more than estimated
        ttl = backend.ttl(key)
        assert ttl is None or ttl >= 1000  # kept until the debt is repaid and it is full
        await asyncio.sleep(2.5)  # past the old TTL of 2 s (capacity / rate + 1)
        later = await store.acquire([bucket], time.time())
        assert not later.allowed
        assert later.buckets[0].remaining < -990  # 1000 of debt, minus what refilled

    run(backend, test)


def test_a_daily_budget_debt_carries_past_midnight(backend: Backend) -> None:
    settings = RateLimitSettings(key_limits=Limits(daily_tokens=100))
    key = f"k-{uuid.uuid4().hex[:8]}"
    clock = Clock(MIDNIGHT - 60)  # 23:59:00 UTC

    async def refused(limiter: RateLimiter, tokens: int) -> RateLimitError:
        with pytest.raises(RateLimitError) as caught:
            await limiter.admit(key, "acme", estimated_tokens=tokens)
        return caught.value

    async def test(store: LimitStore) -> None:
        limiter = RateLimiter(settings, store, clock=clock)
        admission = await limiter.admit(key, "acme", estimated_tokens=100)
        await admission.settle(350)  # 250 past the day's budget
        ttl = backend.ttl(f"{{acme}}:key:{key}:budget")
        assert ttl is None or ttl >= 3 * 86_400  # three midnights repay it
        clock.advance(60)  # 00:00, a new day: 100 back, 150 still owed
        error = await refused(limiter, 1)
        assert "Used 250" in error.message
        assert error.headers["retry-after"] == str(2 * 86_400)  # two more midnights
        clock.advance(86_400)
        await refused(limiter, 1)  # 50 still owed
        clock.advance(86_400)
        await limiter.admit(key, "acme", estimated_tokens=50)
        await refused(limiter, 51)

    run(backend, test)


def test_settle_with_a_partial_count_charges_what_was_generated(
    backend: Backend,
) -> None:
    """A client that went away is charged what was generated: settle(partial) refunds the rest."""
    settings = RateLimitSettings(key_limits=Limits(tpm=100, daily_tokens=1000))
    key = f"k-{uuid.uuid4().hex[:8]}"

    async def test(store: LimitStore) -> None:
        limiter = RateLimiter(settings, store, clock=Clock())
        admission = await limiter.admit(key, "acme", estimated_tokens=100)
        assert admission.headers["x-ratelimit-remaining-tokens"] == "0"
        await admission.settle(37)  # 37 tokens generated before the disconnect
        again = await limiter.admit(key, "acme", estimated_tokens=63)
        assert again.headers["x-ratelimit-remaining-tokens"] == "0"
        with pytest.raises(RateLimitError):
            await limiter.admit(key, "acme", estimated_tokens=1)

    run(backend, test)
