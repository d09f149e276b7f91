"""An unreachable limit store: 503 by default (fail_closed), or admitted and logged (fail_open)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from loguru import logger

from functions.errors import ServiceUnavailableError
from functions.ratelimit import (
    BucketRequest,
    FileStore,
    Limits,
    LimitStore,
    LimitStoreError,
    MemoryStore,
    RateLimiter,
    RateLimitSettings,
)
from functions.ratelimit.redis import RedisStore
from tests.conftest import free_port
from tests.functions.ratelimit.conftest import Clock

LIMITED = Limits(rpm=10)
OnError = Literal["fail_closed", "fail_open"]


@pytest.fixture
def errors() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda m: records.append(dict(m.record)), level="ERROR")
    yield records
    logger.remove(sink)


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A plain file where the store's directory should be: not even root can write there."""
    path = tmp_path / "not-a-directory"
    path.write_text("")
    return path


@pytest.fixture(params=["file", "redis"])
def dead_store(request: pytest.FixtureRequest, blocker: Path) -> LimitStore:
    if request.param == "file":
        return FileStore(blocker / "ratelimit.sqlite3")
    return RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)  # nothing listens


def limiter(store: LimitStore, mode: OnError, clock: Clock | None = None) -> RateLimiter:
    settings = RateLimitSettings(on_store_error=mode, key_limits=LIMITED)
    return RateLimiter(settings, store, clock=clock or Clock())


def test_fail_closed_is_the_default_and_answers_503(
    dead_store: LimitStore, errors: list[dict[str, Any]]
) -> None:
    assert RateLimitSettings().on_store_error == "fail_closed"

    async def main() -> None:
        gate = limiter(dead_store, "fail_closed")
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError) as caught:
                await gate.admit("k1", "acme")
            assert caught.value.status_code == 503
            assert "limit store is unreachable" in caught.value.message
            assert caught.value.headers == {"retry-after": "1"}
        # a caller without any limit never needs the store
        assert (await gate.admit("k1", "acme", limits=Limits())).headers == {}
        await gate.aclose()

    asyncio.run(main())
    assert len(errors) == 1  # once per interval, not once per request
    assert "fail_closed" in errors[0]["message"]
    assert errors[0]["extra"]["error"].startswith("rate-limit")


def test_fail_open_admits_and_logs_once_per_interval(
    dead_store: LimitStore, errors: list[dict[str, Any]]
) -> None:
    clock = Clock()

    async def main() -> None:
        gate = limiter(dead_store, "fail_open", clock)
        for _ in range(3):
            admission = await gate.admit("k1", "acme", estimated_tokens=5)
            assert admission.headers == {}
            await admission.settle(7)
        clock.advance(60)
        await gate.admit("k1", "acme")
        await gate.aclose()

    asyncio.run(main())
    assert [e["level"].name for e in errors] == ["ERROR", "ERROR"]
    assert "admitting without limits (fail_open)" in errors[0]["message"]


def test_the_file_store_recovers_when_its_path_does(blocker: Path) -> None:
    async def main() -> None:
        gate = limiter(FileStore(blocker / "ratelimit.sqlite3"), "fail_closed")
        with pytest.raises(ServiceUnavailableError):
            await gate.admit("k1", "acme")
        await asyncio.to_thread(blocker.unlink)
        admission = await gate.admit("k1", "acme")
        assert admission.headers["x-ratelimit-remaining-requests"] == "9"
        await gate.aclose()

    asyncio.run(main())


class FailingCharges(MemoryStore):
    async def charge(self, requests: Sequence[BucketRequest], now: float) -> None:
        raise LimitStoreError("gone after admission")


def test_a_failed_settlement_is_logged_not_raised(errors: list[dict[str, Any]]) -> None:
    async def main() -> None:
        gate = RateLimiter(RateLimitSettings(key_limits=Limits(tpm=100)), FailingCharges())
        admission = await gate.admit("k1", "acme", estimated_tokens=10)
        await admission.settle(50)

    asyncio.run(main())
    assert "token usage not reconciled" in errors[0]["message"]
