"""The limit store contract, and the token-bucket arithmetic every backend shares.

A store keeps one number per bucket key: the tokens left, and when that was
written. It offers exactly two operations, each atomic over all the buckets it
is given (one lock, one transaction, one Lua script):

- :meth:`LimitStore.acquire`: all or nothing. If every bucket holds its cost, all
  are charged; otherwise none is, and the :class:`Decision` says how long the
  caller would have to wait.
- :meth:`LimitStore.charge`: unconditional, for reconciling after the fact; a
  negative cost refunds. A bucket may go below zero (a debt that later refills).

A debt is never forgiven: an idle bucket is kept (:meth:`BucketRequest.ttl_for`)
until it would be full again, debt repaid included, so expiring it changes nothing.

Backends compute levels with :func:`refill` and decisions with :func:`decide`
(the Redis script mirrors both in Lua), so every backend agrees to the token.
A bucket's timestamp never moves backwards: a call whose ``now`` is older than
the last write (a slower process, a clock slightly behind) refills nothing and
leaves the timestamp alone, so no interval is ever refilled twice. Hence, for
any interleaving, tokens granted <= capacity + rate * (latest now - first now).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# A bucket holds its cost if it will within this many seconds: float rounding in the
# refill arithmetic then never turns an honest retry-after into another refusal. It
# cannot accumulate: a bucket never goes below -refill * SLACK_S by an acquire.
SLACK_S = 1e-6
# Idle buckets that never refill are kept this long (plus, for a windowed bucket, one
# window per capacity of debt); a caller that names the window in the key never reads
# a stale key again, one that gives ``window_s`` carries the debt into the next window.
WINDOW_TTL_S = 2 * 86_400
# The longest an idle bucket is kept, whatever its debt: about ten years.
MAX_TTL_S = 10 * 365 * 86_400


class LimitStoreError(Exception):
    """The store could not be reached or did not answer; nothing is known to be charged."""


@dataclass(frozen=True, slots=True)
class BucketRequest:
    """Take ``cost`` tokens from the bucket ``key``.

    A bucket unseen (or expired) starts full at ``capacity`` and refills
    continuously at ``refill_per_second``, never above ``capacity``. With a
    refill of 0 and ``window_s`` > 0 it is a fixed window: each time Unix time
    crosses a multiple of ``window_s`` (86 400: midnight UTC) it gains
    ``capacity``, so a debt carries into the next window. With neither it never
    refills: the caller puts the window in the key.
    """

    key: str
    capacity: float
    refill_per_second: float
    cost: float
    window_s: float = 0

    @property
    def ttl_s(self) -> int:
        """How long an idle bucket with no debt is kept."""
        return self.ttl_for(0.0)

    def ttl_for(self, level: float) -> int:
        """How long an idle bucket left at ``level`` is kept: until it is full again.

        A bucket read after it expired starts full, so the TTL covers the debt's
        repayment too: expiry never forgives a debt. (Mirrored in the Redis script.)
        """
        debt = max(0.0, -level)
        if self.refill_per_second > 0:
            ttl = math.ceil((self.capacity + debt) / self.refill_per_second) + 1
        elif self.window_s > 0 and self.capacity > 0:
            windows = 1 + math.ceil(debt / self.capacity)  # boundaries until full again
            ttl = max(WINDOW_TTL_S, windows * math.ceil(self.window_s) + 1)
        else:
            ttl = WINDOW_TTL_S
        return min(ttl, MAX_TTL_S)

    def with_cost(self, cost: float) -> BucketRequest:
        return BucketRequest(self.key, self.capacity, self.refill_per_second, cost, self.window_s)


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket after a decision. Times are seconds from the decision's ``now``."""

    capacity: float
    remaining: float  # tokens left (after the charge, when allowed)
    reset_s: float  # until full again; inf for a fixed window
    wait_s: float  # until it holds the requested cost: 0 if it does, inf if it never can


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to :meth:`LimitStore.acquire`, bucket by bucket in request order."""

    allowed: bool
    buckets: tuple[BucketState, ...]

    @property
    def blocked(self) -> int | None:
        """Index of the bucket that must wait longest, or None when allowed."""
        if self.allowed:
            return None
        return max(range(len(self.buckets)), key=lambda i: self.buckets[i].wait_s)

    @property
    def retry_after_s(self) -> float:
        """Seconds until every bucket holds its cost (absent other traffic); 0 when allowed."""
        blocked = self.blocked
        return 0.0 if blocked is None else self.buckets[blocked].wait_s


class LimitStore(Protocol):
    """Shared counters for token buckets; every call is atomic across all processes using it.

    ``now`` is Unix time in seconds, from the caller's clock: hosts sharing a store
    need synchronised clocks (NTP); a clock running behind never refills backwards.
    Failures to reach the store raise :class:`LimitStoreError`, never a library's
    own exception.
    """

    async def acquire(self, requests: Sequence[BucketRequest], now: float) -> Decision:
        """Charge every bucket its cost if all hold it, else charge none."""
        ...

    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        """Charge each bucket its cost unconditionally (negative refunds, up to capacity)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def refill(tokens: float, updated_at: float, bucket: BucketRequest, now: float) -> float:
    """The level of a bucket last written at ``updated_at`` with ``tokens``, as of ``now``."""
    if bucket.window_s > 0:
        windows = math.floor(now / bucket.window_s) - math.floor(updated_at / bucket.window_s)
        return min(bucket.capacity, tokens + max(0, windows) * bucket.capacity)
    elapsed = max(0.0, now - updated_at)
    return min(bucket.capacity, tokens + elapsed * bucket.refill_per_second)


def charged(level: float, bucket: BucketRequest) -> float:
    """The level after taking ``bucket.cost`` (a refund never overfills)."""
    return min(bucket.capacity, level - bucket.cost)


def holds(level: float, bucket: BucketRequest) -> bool:
    """Whether a bucket at ``level`` can pay ``bucket.cost`` (within :data:`SLACK_S`)."""
    return level + bucket.refill_per_second * SLACK_S >= bucket.cost


def _wait_s(level: float, bucket: BucketRequest) -> float:
    if holds(level, bucket):
        return 0.0
    if bucket.cost > bucket.capacity or bucket.refill_per_second <= 0:
        return math.inf
    return (bucket.cost - level) / bucket.refill_per_second


def decide(
    requests: Sequence[BucketRequest], levels: Sequence[float], allowed: bool | None = None
) -> Decision:
    """The decision for ``levels`` (refilled, before any charge), one per request.

    ``allowed`` is computed unless the store already decided (the Redis script).
    """
    if allowed is None:
        allowed = all(holds(level, r) for r, level in zip(requests, levels, strict=True))
    states = []
    for bucket, level in zip(requests, levels, strict=True):
        remaining = charged(level, bucket) if allowed else level
        rate = bucket.refill_per_second
        reset = (bucket.capacity - remaining) / rate if rate > 0 else math.inf
        wait = 0.0 if allowed else _wait_s(level, bucket)
        states.append(BucketState(bucket.capacity, remaining, max(0.0, reset), wait))
    return Decision(allowed, tuple(states))
