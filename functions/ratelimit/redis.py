"""Redis limit store, for gateways on several hosts: one Lua script per call.

The script (:data:`SCRIPT`) reads, refills, decides and writes every bucket of a
call inside Redis, which runs scripts one at a time: that is the atomicity. It is
sent once and then called by its SHA (``EVALSHA``; reloaded if the server lost
it). A bucket is a hash ``{t: tokens, u: updated_at}`` (``u`` never moves back)
with a TTL of its full refill time, debt included, so idle keys vanish by themselves
once they would be full again.

Numbers cross the script boundary as ``%.17g`` strings: Redis would truncate a
Lua number to an integer. In Redis Cluster all keys of one call must share a
slot; the limiter's keys start with a ``{tenant}`` hash tag for that.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from functions.ratelimit.store import (
    MAX_TTL_S,
    SLACK_S,
    WINDOW_TTL_S,
    BucketRequest,
    Decision,
    LimitStoreError,
    decide,
)

# KEYS: the buckets. ARGV: now, mode ("acquire" | "charge"), SLACK_S, WINDOW_TTL_S,
# MAX_TTL_S, then per bucket: capacity, refill per second, cost, window seconds.
# Returns {allowed (1|0), level of each bucket before any charge, as a string}.
# ``refill`` and ``BucketRequest.ttl_for`` in store.py, in Lua.
SCRIPT = """
local now = tonumber(ARGV[1])
local acquire = ARGV[2] == 'acquire'
local slack = tonumber(ARGV[3])
local window_ttl, max_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local levels, stamps, allowed = {}, {}, 1
for i, key in ipairs(KEYS) do
  local at = 5 + (i - 1) * 4
  local capacity = tonumber(ARGV[at + 1])
  local rate, cost = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local window = tonumber(ARGV[at + 4])
  local state = redis.call('HMGET', key, 't', 'u')
  local level, stamp = capacity, now
  if state[1] then
    local updated = tonumber(state[2])
    local gained
    if window > 0 then
      gained = math.max(0, math.floor(now / window) - math.floor(updated / window)) * capacity
    else
      gained = math.max(0, now - updated) * rate
    end
    level = math.min(capacity, tonumber(state[1]) + gained)
    stamp = math.max(now, updated)
  end
  levels[i], stamps[i] = level, stamp
  if acquire and level + rate * slack < cost then allowed = 0 end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local at = 5 + (i - 1) * 4
  if allowed == 1 then
    local capacity, rate = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    local window = tonumber(ARGV[at + 4])
    local left = math.min(capacity, levels[i] - tonumber(ARGV[at + 3]))
    local debt = math.max(0, -left)
    local ttl = window_ttl
    if rate > 0 then
      ttl = math.ceil((capacity + debt) / rate) + 1
    elseif window > 0 and capacity > 0 then
      ttl = math.max(window_ttl, (1 + math.ceil(debt / capacity)) * math.ceil(window) + 1)
    end
    ttl = math.min(ttl, max_ttl)
    local u = string.format('%.17g', stamps[i])
    redis.call('HSET', key, 't', string.format('%.17g', left), 'u', u)
    redis.call('EXPIRE', key, string.format('%d', ttl))
  end
  out[i + 1] = string.format('%.17g', levels[i])
end
return out
"""


class RedisStore:
    """Buckets in Redis at ``url``, under ``prefix``.

    ``timeout_s`` bounds connecting and each reply; a refused connection or a
    timeout is retried once at once (a pooled connection may have gone stale),
    then raises :class:`LimitStoreError`.
    """

    def __init__(
        self, url: str, prefix: str = "enclave:ratelimit:", timeout_s: float = 0.5
    ) -> None:
        self._prefix = prefix
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )
        self._script = self._client.register_script(SCRIPT)

    async def _run(self, mode: str, requests: Sequence[BucketRequest], now: float) -> list[bytes]:
        args: list[str | float | int] = [repr(now), mode, repr(SLACK_S), WINDOW_TTL_S, MAX_TTL_S]
        for r in requests:
            args += [repr(r.capacity), repr(r.refill_per_second), repr(r.cost), repr(r.window_s)]
        keys = [self._prefix + r.key for r in requests]
        try:
            reply: list[bytes] = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise LimitStoreError(f"rate-limit redis: {type(exc).__name__}: {exc}") from exc
        return reply

    async def acquire(self, requests: Sequence[BucketRequest], now: float) -> Decision:
        allowed, *levels = await self._run("acquire", requests, now)
        return decide(requests, [float(level) for level in levels], allowed=int(allowed) == 1)

    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        await self._run("charge", requests, now)

    async def aclose(self) -> None:
        await self._client.aclose()
