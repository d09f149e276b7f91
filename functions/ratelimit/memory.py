"""In-process limit store: a dict behind a lock. Exact for one process, shared by none."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from functions.ratelimit.store import BucketRequest, Decision, charged, decide, refill

# expired buckets are swept every this many writes, so memory stays bounded by live keys
_SWEEP_EVERY = 4096


class MemoryStore:
    """Buckets in a dict. Only for a single gateway process (tests, one-process local runs).

    The critical sections never await, so they are atomic under one event loop
    already; the (uncontended, sub-microsecond) thread lock also keeps them so
    when the store is shared by several loops or threads.
    """

    def __init__(self) -> None:
        # key -> (tokens, updated_at, expires_at)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def _level(self, bucket: BucketRequest, now: float) -> tuple[float, float]:
        """The bucket's level at ``now``, and the timestamp to write with it."""
        state = self._buckets.get(bucket.key)
        if state is None or state[2] <= now:
            return bucket.capacity, now
        return refill(state[0], state[1], bucket, now), max(now, state[1])

    def _write(self, bucket: BucketRequest, tokens: float, stamp: float) -> None:
        self._buckets[bucket.key] = (tokens, stamp, stamp + bucket.ttl_for(tokens))
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            for key in [k for k, (_, _, exp) in self._buckets.items() if exp <= stamp]:
                del self._buckets[key]

    async def acquire(self, requests: Sequence[BucketRequest], now: float) -> Decision:
        with self._lock:
            levels = [self._level(r, now) for r in requests]
            decision = decide(requests, [level for level, _ in levels])
            if decision.allowed:
                for bucket, (level, stamp) in zip(requests, levels, strict=True):
                    self._write(bucket, charged(level, bucket), stamp)
            return decision

    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        with self._lock:
            for bucket in requests:
                level, stamp = self._level(bucket, now)
                self._write(bucket, charged(level, bucket), stamp)

    async def aclose(self) -> None:
        with self._lock:
            self._buckets.clear()
