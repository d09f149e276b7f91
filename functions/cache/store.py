"""Where cached answers live: one process's memory, or Redis shared by every gateway
(:mod:`functions.cache.redis`, imported only when configured: redis-py's import is a
tenth of a second of a scaled-to-zero gateway's start).

An entry is opaque bytes under a key ``<tenant in hex>:<digest>``; the tenant is
hex-encoded so that clearing one tenant (a prefix) never touches another whose
name merely starts the same. Both stores expire entries after their TTL; the
memory store also evicts the least recently used entries past its bounds.

A store that fails raises :class:`CacheStoreError`; the cache treats that as a
miss (the model answers), never as a failed request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


class CacheStoreError(Exception):
    """The store could not be read or written."""


def tenant_prefix(tenant: str) -> str:
    return tenant.encode().hex() + ":"


@dataclass(frozen=True, slots=True)
class StoreStats:
    entries: int
    bytes: int | None  # None where the store cannot say cheaply


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def clear(self, tenant: str | None = None) -> int:
        """Delete every entry (of ``tenant``); how many went."""
        ...

    async def stats(self, tenant: str | None = None) -> StoreStats: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """One process's entries: TTL per entry, LRU past ``max_entries`` or ``max_bytes``."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries, self._max_bytes = max_entries, max_bytes
        self._bytes = 0
        self.evictions = 0

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max_bytes:
            return  # larger than the whole cache: never worth evicting everything for
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl_s, value)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(value)

    async def clear(self, tenant: str | None = None) -> int:
        if tenant is None:
            n = len(self._entries)
            self._entries.clear()
            self._bytes = 0
            return n
        prefix = tenant_prefix(tenant)
        doomed = [k for k in self._entries if k.startswith(prefix)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def stats(self, tenant: str | None = None) -> StoreStats:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            self._drop(key)
        if tenant is None:
            return StoreStats(len(self._entries), self._bytes)
        prefix = tenant_prefix(tenant)
        mine = [v for k, (_, v) in self._entries.items() if k.startswith(prefix)]
        return StoreStats(len(mine), sum(len(v) for v in mine))

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0
