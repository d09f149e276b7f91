"""The index of answered requests in Redis, shared by every gateway container.

One string per answer, ``<prefix><tenant in hex>:<request id>`` → ``[experiment,
variant]`` as JSON, written with ``SET … EX <window>``: Redis forgets it when the
rating window closes, and a reused id overwrites the earlier answer, as the SQLite
index does. The tenant is hex-encoded so that no tenant's keys can be spelled by
another's name. The client follows the rate limiter's
(:class:`~functions.ratelimit.redis.RedisStore`): short timeouts, one immediate
retry for a stale pooled connection, then a 503.
"""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from functions.errors import StorageUnavailableError
from functions.feedback.index import Answered


class RedisIndex:
    """A :class:`~functions.feedback.index.RequestIndex` in Redis at ``url``."""

    def __init__(self, url: str, prefix: str, window_s: int, timeout_s: float = 0.5) -> None:
        self._prefix = prefix
        self._window_s = window_s
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )

    def _key(self, tenant: str, request_id: str) -> str:
        return f"{self._prefix}{tenant.encode().hex()}:{request_id}"

    async def remember(self, tenant: str, request_id: str, answered: Answered) -> None:
        value = orjson.dumps(answered)
        try:
            await self._client.set(self._key(tenant, request_id), value, ex=self._window_s)
        except (RedisError, OSError) as exc:
            raise StorageUnavailableError(f"feedback index (redis): {exc}") from exc

    async def lookup(self, tenant: str, request_id: str) -> Answered | None:
        try:
            value = await self._client.get(self._key(tenant, request_id))
        except (RedisError, OSError) as exc:
            raise StorageUnavailableError(f"feedback index (redis): {exc}") from exc
        if value is None:
            return None
        experiment, variant = orjson.loads(value)
        return (experiment, variant)

    async def aclose(self) -> None:
        await self._client.aclose()
