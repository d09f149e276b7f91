"""The cache store in Redis, shared by every gateway: see :mod:`functions.cache.store`."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from functions.cache.store import CacheStoreError, StoreStats, tenant_prefix


class RedisStore:
    """Entries as Redis strings with a TTL (``SET … PX``), under ``prefix``."""

    _SCAN_BATCH = 500

    def __init__(self, url: str, prefix: str) -> None:
        # one attempt, short timeouts: a cache that is down must cost a request little
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise CacheStoreError(f"redis: {exc}") from exc
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            raise CacheStoreError(f"redis: {exc}") from exc

    async def _keys(self, tenant: str | None) -> list[bytes]:
        pattern = _glob_escape(self._prefix + (tenant_prefix(tenant) if tenant else "")) + "*"
        found: list[bytes] = []
        try:
            async for key in self._redis.scan_iter(match=pattern, count=self._SCAN_BATCH):
                found.append(key)
        except (RedisError, OSError) as exc:
            raise CacheStoreError(f"redis: {exc}") from exc
        return found

    async def clear(self, tenant: str | None = None) -> int:
        keys = await self._keys(tenant)
        deleted = 0
        try:
            for at in range(0, len(keys), self._SCAN_BATCH):
                deleted += int(await self._redis.unlink(*keys[at : at + self._SCAN_BATCH]))
        except (RedisError, OSError) as exc:
            raise CacheStoreError(f"redis: {exc}") from exc
        return deleted

    async def stats(self, tenant: str | None = None) -> StoreStats:
        return StoreStats(len(await self._keys(tenant)), None)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
