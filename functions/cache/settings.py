"""Response-cache settings: ``settings.cache`` (``ENCLAVE_CACHE_*``).

Pure pydantic, importing nothing else of Enclave but the classification levels, so
:mod:`functions.settings` can nest it::

    ENCLAVE_CACHE_BACKEND=redis ENCLAVE_CACHE_REDIS_URL=redis://10.0.0.5:6379/1
    ENCLAVE_CACHE_TTL_S=3600
    ENCLAVE_CACHE_TENANTS='{"acme": {"mode": "all"}, "clinic": {"mode": "off"}}'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from functions.filtering.classify import Level

# "deterministic": temperature 0 or a seed; "all": every request; "off": none
Mode = Literal["deterministic", "all", "off"]


class TenantCachePolicy(BaseModel):
    """What one tenant overrides; unset fields keep the gateway's defaults."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None
    sensitive: Literal["encrypt", "skip"] | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)


class CacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["memory", "redis", "off"] = Field(
        default="memory", description="memory: one process; redis: every gateway sharing it"
    )
    mode: Mode = "deterministic"
    ttl_s: float = Field(default=3600.0, gt=0, description="each entry's lifetime")
    # the memory backend's bounds; past either, the least recently used entries go
    max_entries: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # answers to conversations classified at ``sensitive_at`` or above are stored
    # encrypted (AES-256-GCM, a key per tenant derived from the audit KEK) or not at all;
    # without an active KEK "encrypt" stores nothing for them
    sensitive_at: Level = Level.CONFIDENTIAL
    sensitive: Literal["encrypt", "skip"] = "encrypt"
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = Field(default="enclave:cache:", min_length=1, max_length=64)
    # semantic matching, off unless set: single-turn requests of one tenant and model
    # whose question embeds within this cosine similarity of a cached one share its answer
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)
    semantic_max_entries: int = Field(default=2_000, ge=1, description="per tenant and model")
    tenants: dict[str, TenantCachePolicy] = Field(default_factory=dict)

    def for_tenant(self, tenant: str) -> CacheSettings:
        override = self.tenants.get(tenant)
        if override is None:
            return self
        changes = override.model_dump(exclude_none=True)
        return self.model_copy(update=changes) if changes else self
