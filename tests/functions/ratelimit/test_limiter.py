"""The limiter on every backend: headers, 429s, retry-after, budgets, settlement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from functions.errors import RateLimitError
from functions.ratelimit import Limits, RateLimiter, RateLimitSettings
from tests.functions.ratelimit.conftest import MIDNIGHT, Clock, StoreFactory

Check = Callable[[RateLimiter, Clock], Awaitable[None]]


def run(make_store: StoreFactory, settings: RateLimitSettings, check: Check) -> None:
    clock = Clock()

    async def main() -> None:
        limiter = RateLimiter(settings, make_store(), clock=clock)
        try:
            await check(limiter, clock)
        finally:
            await limiter.aclose()

    asyncio.run(main())


async def refused(limiter: RateLimiter, key: str = "k1", tokens: int = 0) -> RateLimitError:
    with pytest.raises(RateLimitError) as caught:
        await limiter.admit(key, "acme", estimated_tokens=tokens)
    return caught.value


def limits(**key: int) -> RateLimitSettings:
    return RateLimitSettings(key_limits=Limits(**key))


def test_admitted_requests_carry_openai_headers(make_store: StoreFactory) -> None:
    async def check(limiter: RateLimiter, clock: Clock) -> None:
        admission = await limiter.admit("k1", "acme", estimated_tokens=10)
        assert admission.headers == {
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "20s",  # one request back at 3/min
            "x-ratelimit-limit-tokens": "100",
            "x-ratelimit-remaining-tokens": "90",
            "x-ratelimit-reset-tokens": "6s",  # 10 tokens back at 100/min
        }

    run(make_store, limits(rpm=3, tpm=100), check)


def test_429_with_retry_after_that_is_exactly_enough(make_store: StoreFactory) -> None:
    async def check(limiter: RateLimiter, clock: Clock) -> None:
        for _ in range(2):
            await limiter.admit("k1", "acme")
        clock.advance(10)
        error = await refused(limiter)
        assert error.status_code == 429
        assert error.code == "rate_limit_exceeded"
        assert error.message == (
            "Rate limit reached for key k1 on requests per min (RPM): "
            "Limit 2, Used 2, Requested 1. Please try again in 20s."
        )
        # 1/3 of a request refilled in 10 s; the other 2/3 take 20 s more
        assert error.headers["retry-after"] == "20"
        assert error.headers["retry-after-ms"] == "20000"
        assert error.headers["x-ratelimit-remaining-requests"] == "0"
        assert error.headers["x-ratelimit-reset-requests"] == "50s"
        clock.advance(19.99)
        await refused(limiter)
        clock.advance(0.01)
        await limiter.admit("k1", "acme")

    run(make_store, limits(rpm=2), check)


def test_key_and_tenant_are_taken_together_or_not_at_all(make_store: StoreFactory) -> None:
    settings = RateLimitSettings(key_limits=Limits(rpm=2), tenant_limits=Limits(rpm=3))

    async def check(limiter: RateLimiter, clock: Clock) -> None:
        first = await limiter.admit("k1", "acme")
        # the key's bucket (1 left) binds before the tenant's (2 left)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        await limiter.admit("k1", "acme")
        assert "for key k1 on requests" in (await refused(limiter, "k1")).message
        # the key's refusal took nothing from the tenant: one left for k2
        await limiter.admit("k2", "acme")
        error = await refused(limiter, "k2")
        assert "for tenant acme on requests" in error.message
        assert error.headers["x-ratelimit-limit-requests"] == "3"
        await limiter.admit("k3", "other")  # another tenant's own buckets

    run(make_store, settings, check)


def test_daily_budget_resets_at_utc_midnight(make_store: StoreFactory) -> None:
    async def check(limiter: RateLimiter, clock: Clock) -> None:
        clock.now = MIDNIGHT - 60  # 23:59:00 UTC
        await limiter.admit("k1", "acme", estimated_tokens=60)
        error = await refused(limiter, tokens=50)
        assert error.message == (
            "Daily token budget exhausted for key k1: Limit 100, Used 60, Requested 50. "
            "It resets at 00:00 UTC. Please try again in 1m0s."
        )
        assert error.headers["retry-after"] == "60"
        assert "x-ratelimit-limit-tokens" not in error.headers  # no TPM limit set
        clock.advance(59.5)
        await refused(limiter, tokens=50)
        clock.advance(0.5)  # 00:00:00, a new day
        await limiter.admit("k1", "acme", estimated_tokens=100)
        await refused(limiter, tokens=1)

    run(make_store, limits(daily_tokens=100), check)


def test_settle_refunds_and_charges_the_difference(make_store: StoreFactory) -> None:
    async def check(limiter: RateLimiter, clock: Clock) -> None:
        small = await limiter.admit("k1", "acme", estimated_tokens=50)
        await small.settle(20)  # 30 back to TPM and the budget
        await small.settle(0)  # settled already: ignored
        big = await limiter.admit("k1", "acme", estimated_tokens=80)
        assert big.headers["x-ratelimit-remaining-tokens"] == "0"
        await big.settle(90)  # 10 more than estimated: a debt of 10
        error = await refused(limiter, tokens=20)
        assert error.headers["x-ratelimit-remaining-tokens"] == "0"
        assert error.headers["retry-after"] == "18"  # 30 tokens at 100/min
        clock.advance(18)
        await limiter.admit("k1", "acme", estimated_tokens=20)
        # budget: 20 + 90 + 20 = 130 spent of 150 (refused calls took nothing)
        clock.advance(3600)
        await refused(limiter, tokens=21)
        await limiter.admit("k1", "acme", estimated_tokens=20)

    run(make_store, limits(tpm=100, daily_tokens=150), check)


def test_a_request_larger_than_the_limit_is_not_retryable(make_store: StoreFactory) -> None:
    async def check(limiter: RateLimiter, clock: Clock) -> None:
        error = await refused(limiter, tokens=101)
        assert error.message.startswith(
            "Request too large for key k1 on tokens per min (TPM): Limit 100, Requested 101."
        )
        assert error.headers["x-should-retry"] == "false"
        assert "retry-after" not in error.headers
        await limiter.admit("k1", "acme", estimated_tokens=100)  # nothing was taken

    run(make_store, limits(tpm=100), check)


def test_per_key_and_per_tenant_overrides(make_store: StoreFactory) -> None:
    settings = RateLimitSettings(
        key_limits=Limits(rpm=1),
        keys={"vip": Limits(rpm=5)},
        tenants={"small": Limits(rpm=1)},
    )

    async def check(limiter: RateLimiter, clock: Clock) -> None:
        for _ in range(5):
            await limiter.admit("vip", "acme")
        await limiter.admit("k1", "acme", limits=Limits(rpm=2))  # explicit limits win
        await limiter.admit("k1", "acme", limits=Limits(rpm=2))
        await limiter.admit("k2", "small")
        with pytest.raises(RateLimitError, match="tenant small"):
            await limiter.admit("vip", "small")

    run(make_store, settings, check)


def test_end_users_of_one_key_have_buckets_of_their_own(make_store: StoreFactory) -> None:
    """Per (key, user) on every backend: user A's 429 takes nothing from B or the key."""
    settings = RateLimitSettings(key_limits=Limits(rpm=5), user_limits=Limits(rpm=2))

    async def check(limiter: RateLimiter, clock: Clock) -> None:
        for _ in range(2):
            await limiter.admit("k1", "acme", user="u_aaaa")
        with pytest.raises(RateLimitError) as caught:
            await limiter.admit("k1", "acme", user="u_aaaa")
        assert "for user u_aaaa on requests per min" in caught.value.message
        admitted = await limiter.admit("k1", "acme", user="u_bbbb")
        # the user's bucket binds: 1 of 2 left, where the key's has 2 of 5
        assert admitted.headers["x-ratelimit-remaining-requests"] == "1"
        assert admitted.headers["x-ratelimit-limit-requests"] == "2"
        await limiter.admit("k1", "acme", user="u_bbbb")
        await limiter.admit("k1", "acme")  # the key's own request: 5 of 5, A's 429 was free
        with pytest.raises(RateLimitError) as key_full:
            await limiter.admit("k1", "acme", user="u_cccc")
        assert "for key k1" in key_full.value.message  # the key's limit holds over its users
        # the same user id under another key is another user
        await limiter.admit("k2", "acme", user="u_aaaa")

    run(make_store, settings, check)


def test_a_keys_own_user_limits_win_over_the_tenants_and_the_defaults(
    make_store: StoreFactory,
) -> None:
    settings = RateLimitSettings(
        user_limits=Limits(rpm=5), tenant_user_limits={"acme": Limits(rpm=1)}
    )

    async def check(limiter: RateLimiter, clock: Clock) -> None:
        await limiter.admit("k1", "acme", user="u_a")
        with pytest.raises(RateLimitError):
            await limiter.admit("k1", "acme", user="u_a")  # the tenant's: 1 a minute
        for _ in range(3):
            await limiter.admit("k1", "acme", user="u_b", user_limits=Limits(rpm=3))
        with pytest.raises(RateLimitError):
            await limiter.admit("k1", "acme", user="u_b", user_limits=Limits(rpm=3))
        for _ in range(5):
            await limiter.admit("k1", "other", user="u_a")  # the default elsewhere

    run(make_store, settings, check)
