"""Rate-limit settings: which store, what to do when it is down, and the limits.

Pure pydantic, importing nothing else of Enclave, so :mod:`functions.settings` can
nest it (``settings.gateway.rate_limit``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Limits(BaseModel):
    """Limits for one key or one tenant; None means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(
        default=None, ge=1, description="tokens (prompt + completion) per minute"
    )
    daily_tokens: int | None = Field(default=None, ge=1, description="tokens per UTC day")

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.daily_tokens is None


class RateLimitSettings(BaseModel):
    backend: Literal["memory", "file", "redis"] = Field(
        default="memory",
        description="memory: one process; file: processes on one host; redis: many hosts",
    )
    file_path: Path | None = Field(
        default=None, description="SQLite file; default: <data_dir>/ratelimit.sqlite3"
    )
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = "enclave:ratelimit:"
    store_timeout_s: float = Field(
        default=0.5, gt=0, description="redis connect/reply timeout; SQLite busy timeout"
    )
    # What an unreachable store means. fail_closed: every limited request is a 503
    # until it is back. fail_open: requests are admitted unlimited (logged at ERROR).
    on_store_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    error_log_interval_s: float = Field(default=60.0, ge=0, description="store-down log throttle")
    # completion tokens assumed at admission when a request sets no max_tokens
    assumed_completion_tokens: int = Field(default=1024, ge=0)
    key_limits: Limits = Field(default_factory=Limits, description="each key's, unless in keys")
    tenant_limits: Limits = Field(
        default_factory=Limits, description="each tenant's, unless in tenants"
    )
    keys: dict[str, Limits] = Field(default_factory=dict, description="by key fingerprint")
    tenants: dict[str, Limits] = Field(default_factory=dict, description="by tenant name")
    # each end user of a frontend key (functions/endusers.py), unless the key sets its own
    user_limits: Limits = Field(
        default_factory=Limits, description="each end user's, unless in tenant_user_limits"
    )
    tenant_user_limits: dict[str, Limits] = Field(
        default_factory=dict, description="each end user's, by tenant name"
    )

    def limits_for_key(self, key_id: str) -> Limits:
        return self.keys.get(key_id, self.key_limits)

    def limits_for_tenant(self, tenant: str) -> Limits:
        return self.tenants.get(tenant, self.tenant_limits)

    def limits_for_user(self, tenant: str) -> Limits:
        return self.tenant_user_limits.get(tenant, self.user_limits)
