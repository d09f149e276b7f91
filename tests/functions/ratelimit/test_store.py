"""Token-bucket semantics, identical on every backend, with the clock passed in by hand."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from functions.ratelimit import BucketRequest, Decision, LimitStore
from tests.functions.ratelimit.conftest import StoreFactory

T0 = 1_000_000.0
THREE = BucketRequest("three", capacity=3, refill_per_second=1, cost=1)


async def take(store: LimitStore, bucket: BucketRequest, now: float, times: int = 1) -> Decision:
    decision = await store.acquire([bucket], now)
    for _ in range(times - 1):
        decision = await store.acquire([bucket], now)
    return decision


def run_with(make_store: StoreFactory, test: Callable[[LimitStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = make_store()
        try:
            await test(store)
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_fresh_bucket_is_full_and_empties(make_store: StoreFactory) -> None:
    async def test(store: LimitStore) -> None:
        remaining = [(await take(store, THREE, T0)).buckets[0].remaining for _ in range(3)]
        assert remaining == [2, 1, 0]
        refused = await take(store, THREE, T0)
        assert not refused.allowed
        assert refused.blocked == 0
        assert refused.retry_after_s == 1.0
        assert refused.buckets[0].remaining == 0
        assert refused.buckets[0].reset_s == 3.0

    run_with(make_store, test)


def test_refill_is_continuous_and_capped(make_store: StoreFactory) -> None:
    async def test(store: LimitStore) -> None:
        await take(store, THREE, T0, times=3)
        half = await take(store, THREE, T0 + 0.5)
        assert not half.allowed
        assert half.retry_after_s == 0.5
        assert (await take(store, THREE, T0 + 1.0)).allowed
        # long idle: back to capacity, not beyond
        later = T0 + 3600
        assert [(await take(store, THREE, later)).allowed for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]

    run_with(make_store, test)


def test_all_or_nothing_across_buckets(make_store: StoreFactory) -> None:
    wide = BucketRequest("wide", capacity=5, refill_per_second=1, cost=1)
    narrow = BucketRequest("narrow", capacity=1, refill_per_second=0.5, cost=1)

    async def test(store: LimitStore) -> None:
        assert (await store.acquire([wide, narrow], T0)).allowed
        refused = await store.acquire([wide, narrow], T0)
        assert not refused.allowed
        assert refused.blocked == 1
        assert refused.retry_after_s == 2.0
        assert [b.remaining for b in refused.buckets] == [4, 0]
        # nothing was taken from "wide" by the refused call
        assert (await store.acquire([wide.with_cost(4)], T0)).allowed
        assert not (await store.acquire([wide], T0)).allowed

    run_with(make_store, test)


def test_retry_after_is_the_longest_wait(make_store: StoreFactory) -> None:
    slow = BucketRequest("slow", capacity=2, refill_per_second=0.1, cost=2)
    fast = BucketRequest("fast", capacity=10, refill_per_second=5, cost=10)

    async def test(store: LimitStore) -> None:
        assert (await store.acquire([slow, fast], T0)).allowed
        refused = await store.acquire([slow, fast], T0 + 1)
        assert not refused.allowed
        # slow has 0.1, needs 2: 19 s; fast has 5, needs 10: 1 s
        assert refused.blocked == 0
        assert math.isclose(refused.retry_after_s, 19.0)
        assert math.isclose(refused.buckets[1].wait_s, 1.0)
        assert not (await store.acquire([slow, fast], T0 + 19.9)).allowed
        assert (await store.acquire([slow, fast], T0 + 20)).allowed

    run_with(make_store, test)


def test_impossible_costs_never_fit(make_store: StoreFactory) -> None:
    window = BucketRequest("day:2026-01-01", capacity=10, refill_per_second=0, cost=6)

    async def test(store: LimitStore) -> None:
        too_big = await store.acquire([THREE.with_cost(4)], T0)
        assert not too_big.allowed
        assert too_big.retry_after_s == math.inf
        assert (await store.acquire([window], T0)).allowed
        spent = await store.acquire([window], T0 + 10_000)  # a window never refills
        assert not spent.allowed
        assert spent.retry_after_s == math.inf
        assert spent.buckets[0].reset_s == math.inf

    run_with(make_store, test)


def test_charge_refunds_up_to_capacity_and_may_leave_a_debt(make_store: StoreFactory) -> None:
    tokens = BucketRequest("tpm", capacity=100, refill_per_second=10, cost=60)

    async def test(store: LimitStore) -> None:
        assert (await store.acquire([tokens], T0)).allowed  # 40 left
        await store.charge([tokens.with_cost(-500)], T0)  # refund, capped: 100
        assert (await store.acquire([tokens.with_cost(100)], T0)).allowed  # 0 left
        await store.charge([tokens.with_cost(30)], T0)  # a debt: -30
        refused = await store.acquire([tokens.with_cost(20)], T0)
        assert refused.buckets[0].remaining == -30
        assert refused.retry_after_s == 5.0  # 50 tokens at 10/s

    run_with(make_store, test)


def test_fractional_levels_survive_the_round_trip(make_store: StoreFactory) -> None:
    rpm = BucketRequest("rpm7", capacity=7, refill_per_second=7 / 60, cost=1)

    async def test(store: LimitStore) -> None:
        await take(store, rpm, T0, times=7)
        decision = await store.acquire([rpm], T0 + 1.0)
        assert math.isclose(decision.buckets[0].remaining, 7 / 60, rel_tol=1e-12)
        assert math.isclose(decision.retry_after_s, 60 / 7 - 1.0, rel_tol=1e-12)

    run_with(make_store, test)


def test_a_timestamp_older_than_the_last_write_refills_nothing(make_store: StoreFactory) -> None:
    async def test(store: LimitStore) -> None:
        await take(store, THREE, T0 + 10, times=3)
        late = await take(store, THREE, T0)  # a slower process's older clock reading
        assert not late.allowed
        assert not (await take(store, THREE, T0 + 10.5)).allowed
        assert (await take(store, THREE, T0 + 11)).allowed

    run_with(make_store, test)


def test_concurrent_acquires_in_one_process_are_exact(make_store: StoreFactory) -> None:
    rpm = BucketRequest("burst", capacity=50, refill_per_second=50 / 60, cost=1)

    async def test(store: LimitStore) -> None:
        stores = [store, make_store(), make_store()]  # several connections, one set of buckets
        try:
            calls = [stores[i % 3].acquire([rpm], T0) for i in range(200)]
            decisions = await asyncio.gather(*calls)
        finally:
            for other in stores[1:]:
                if other is not store:
                    await other.aclose()
        assert sum(d.allowed for d in decisions) == 50

    run_with(make_store, test)
