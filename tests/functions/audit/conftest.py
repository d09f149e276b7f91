"""A pristine audit directory (two writers, two days) that each test copies and tampers with."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from functions.audit import AuditLog, AuditSettings, build_request_record, generate_keys
from functions.audit.files import LocalStorage
from tests.s3 import s3_server, s3_storage  # a real S3-compatible server for bucket tests

__all__ = ["s3_server", "s3_storage"]

DAYS = ("2025-03-01", "2025-03-02")
INSTANCES = ("gw-a", "gw-b")
PER_DAY = 10
PROMPT = "PROMPT-TEXT-Do-not-store-me"
ANSWER = "ANSWER-TEXT-Do-not-store-me"


def make_settings(root: Path, **overrides: Any) -> AuditSettings:
    fragment = generate_keys(root / "keys")
    return AuditSettings(
        directory=root / "audit", heads_directory=root / "audit-heads", **fragment, **overrides
    )


def local(settings: AuditSettings) -> LocalStorage:
    """The directories ``settings`` names, as the writer, ``verify`` and ``prune`` see them."""
    return LocalStorage(settings.directory, settings.heads_dir)


def request(i: int, day: str = DAYS[0], *, content: bool = True) -> dict[str, Any]:
    return build_request_record(
        ts=f"{day}T12:{i // 60:02d}:{i % 60:02d}.000Z",
        trace_id=f"trace-{day}-{i}",
        principal="key-7f3a",
        tenant="acme",
        role="member",
        model="smollm2",
        deployment="local-cpu",
        tokens_in=10 + i,
        tokens_out=20 + i,
        latency_ms=12.5,
        status=200,
        decisions={"auth": "ok", "route": "local-cpu"},
        prompt=[{"role": "user", "content": f"{PROMPT} {i}"}] if content else None,
        answer=f"{ANSWER} {i}" if content else None,
    )


def write_days(settings: AuditSettings, days: tuple[str, ...] = DAYS) -> None:
    """PER_DAY records a day from each instance, the instances writing concurrently."""

    async def main() -> None:
        logs = [AuditLog(settings.model_copy(update={"instance_id": n})) for n in INSTANCES]
        for log in logs:
            await log.start()
        for day in days:
            for i in range(PER_DAY):
                for log in logs:
                    log.record(request(i, day))
            await asyncio.gather(*(log.flush() for log in logs))
        for log in logs:
            await log.aclose()
            assert log.failures == 0

    asyncio.run(main())


def copy_of(settings: AuditSettings, root: Path) -> AuditSettings:
    """The same audit files under ``root``: tamper with the copy, never the original."""
    assert settings.heads_directory is not None
    shutil.copytree(settings.directory, root / "audit")
    shutil.copytree(settings.heads_directory, root / "audit-heads")
    return settings.model_copy(
        update={"directory": root / "audit", "heads_directory": root / "audit-heads"}
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> AuditSettings:
    settings = make_settings(tmp_path_factory.mktemp("pristine"))
    write_days(settings)
    return settings


@pytest.fixture
def audit(pristine: AuditSettings, tmp_path: Path) -> AuditSettings:
    return copy_of(pristine, tmp_path / "copy")


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """Messages logged at ERROR or above while the test runs."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="ERROR")
    yield messages
    logger.remove(sink)


def log_file(settings: AuditSettings, day: str, instance: str) -> Path:
    return settings.directory / day / f"{instance}.jsonl"


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)
