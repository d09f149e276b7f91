"""Settings, store selection and the admission estimate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydantic
import pytest

from functions.ratelimit import (
    FileStore,
    Limits,
    MemoryStore,
    RateLimiter,
    RateLimitSettings,
    build_store,
    estimate_tokens,
)
from functions.ratelimit.limiter import utc_day
from functions.ratelimit.redis import RedisStore
from functions.wire import ChatCompletionRequest
from tests.functions.ratelimit.conftest import MIDNIGHT


def test_limits_are_positive_or_none() -> None:
    assert Limits().unlimited
    assert not Limits(daily_tokens=1).unlimited
    for bad in ({"rpm": 0}, {"tpm": -1}, {"burst": 3}):
        with pytest.raises(pydantic.ValidationError):
            Limits.model_validate(bad)


def test_settings_from_json_as_the_environment_gives_them() -> None:
    settings = RateLimitSettings.model_validate_json(
        '{"backend": "redis", "redis_url": "redis://:pw@cache:6379/1", "on_store_error": '
        '"fail_open", "tenant_limits": {"rpm": 600}, "keys": {"3f2a": {"tpm": 5}}}'
    )
    assert settings.limits_for_tenant("any") == Limits(rpm=600)
    assert settings.limits_for_key("3f2a") == Limits(tpm=5)
    assert settings.limits_for_key("other") == Limits()
    assert "pw" not in repr(settings)


def test_build_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(build_store(RateLimitSettings(), tmp_path), MemoryStore)
    file_store = build_store(RateLimitSettings(backend="file"), tmp_path)
    assert isinstance(file_store, FileStore)
    assert file_store.path == tmp_path / "ratelimit.sqlite3"
    explicit = build_store(RateLimitSettings(backend="file", file_path=tmp_path / "x.db"), tmp_path)
    assert isinstance(explicit, FileStore) and explicit.path == tmp_path / "x.db"

    async def redis() -> None:
        store = build_store(RateLimitSettings(backend="redis"), tmp_path)
        assert isinstance(store, RedisStore)
        await store.aclose()

    asyncio.run(redis())


def test_estimate_is_prompt_chars_over_4_plus_the_completion_budget() -> None:
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 41}], "max_tokens": 7}
    )
    assert estimate_tokens(body, 1024) == 11 + 7
    assert estimate_tokens(body.model_copy(update={"max_tokens": None, "n": 2}), 100) == 211
    limiter = RateLimiter(RateLimitSettings(assumed_completion_tokens=3), MemoryStore())
    assert limiter.estimate_tokens(body.model_copy(update={"max_tokens": None})) == 14


def test_utc_day_and_time_to_midnight() -> None:
    assert utc_day(MIDNIGHT - 1) == ("2025-12-31", 1.0)
    assert utc_day(MIDNIGHT) == ("2026-01-01", 86_400.0)
