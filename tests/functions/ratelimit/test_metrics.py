"""The limiter's counters: refusals by the bucket that was short, failed store calls by
operation; every series exported from zero so ``increase()`` sees the first one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from functions.errors import RateLimitError, ServiceUnavailableError
from functions.ratelimit import (
    BucketRequest,
    Decision,
    Limits,
    LimitStoreError,
    MemoryStore,
    RateLimiter,
    RateLimitSettings,
)
from tests.functions.ratelimit.conftest import Clock


def count(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(f"enclave_gateway_ratelimit_{name}_total", labels)


def test_every_series_starts_at_zero() -> None:
    registry = CollectorRegistry()
    RateLimiter(RateLimitSettings(), MemoryStore(), registry=registry)
    for kind in ("requests", "tokens", "budget"):
        for scope in ("key", "tenant"):
            assert count(registry, "refusals", kind=kind, scope=scope) == 0
    assert count(registry, "store_errors", operation="admit") == 0
    assert count(registry, "store_errors", operation="settle") == 0


def refused(limits: Limits, scope: str, tokens: int) -> CollectorRegistry:
    """A registry after one admitted request and one refused, both ``tokens`` big."""
    registry = CollectorRegistry()
    settings = (
        RateLimitSettings(tenant_limits=limits)
        if scope == "tenant"
        else RateLimitSettings(key_limits=limits)
    )
    gate = RateLimiter(settings, MemoryStore(), clock=Clock(), registry=registry)

    async def main() -> None:
        await gate.admit("k1", "acme", estimated_tokens=tokens)
        with pytest.raises(RateLimitError):
            await gate.admit("k2" if scope == "tenant" else "k1", "acme", estimated_tokens=tokens)

    asyncio.run(main())
    return registry


def test_an_exhausted_daily_budget_is_counted_as_such() -> None:
    registry = refused(Limits(daily_tokens=100), "key", 60)
    assert count(registry, "refusals", kind="budget", scope="key") == 1
    assert count(registry, "refusals", kind="tokens", scope="key") == 0


def test_a_full_request_bucket_is_counted_with_its_scope() -> None:
    registry = refused(Limits(rpm=1), "tenant", 1)
    assert count(registry, "refusals", kind="requests", scope="tenant") == 1
    assert count(registry, "refusals", kind="requests", scope="key") == 0
    assert count(registry, "refusals", kind="budget", scope="tenant") == 0


class DeadStore(MemoryStore):
    async def acquire(self, requests: Sequence[BucketRequest], now: float) -> Decision:
        raise LimitStoreError("unreachable")

    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        raise LimitStoreError("unreachable")


class FailingCharges(MemoryStore):
    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        raise LimitStoreError("gone after admission")


def test_failed_store_calls_are_counted_by_operation() -> None:
    settings = RateLimitSettings(key_limits=Limits(tpm=100))
    down, flaky = CollectorRegistry(), CollectorRegistry()

    async def main() -> None:
        with pytest.raises(ServiceUnavailableError):  # fail_closed: 503
            await RateLimiter(settings, DeadStore(), registry=down).admit("k1", "acme")
        gate = RateLimiter(settings, FailingCharges(), registry=flaky)
        admission = await gate.admit("k1", "acme", estimated_tokens=10)
        await admission.settle(50)

    asyncio.run(main())
    assert count(down, "store_errors", operation="admit") == 1
    assert count(flaky, "store_errors", operation="admit") == 0
    assert count(flaky, "store_errors", operation="settle") == 1
