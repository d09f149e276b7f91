"""The writer: order under load, never blocking, and loud (counted) about every loss."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import orjson
import pytest

from functions.audit import AuditConfigError, AuditLog, AuditSettings, load_keys, verify
from functions.audit.store import list_logs
from tests.functions.audit.conftest import DAYS, local, make_settings, read_lines, request


def records_of(settings: AuditSettings) -> list[dict[str, object]]:
    return [
        orjson.loads(line)
        for logs in list_logs(settings.directory).values()
        for _, path in logs
        for line in read_lines(path)
    ]


def assert_verifies(settings: AuditSettings) -> None:
    keys = load_keys(settings)
    report = verify(local(settings), keys.public, keys.hmac)
    assert report.ok, report.render()


def test_concurrent_load_is_all_written_in_order(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw", batch_size=64)
    tasks, each = 50, 20

    async def main() -> AuditLog:
        log = AuditLog(settings)
        await log.start()

        async def client(n: int) -> None:
            for i in range(each):
                log.record({**request(i, content=False), "trace_id": f"{n}-{i}"})
                await asyncio.sleep(0)

        await asyncio.gather(*(client(n) for n in range(tasks)))
        await log.aclose()
        return log

    log = asyncio.run(main())
    assert (log.written, log.failures) == (tasks * each, 0)
    records = records_of(settings)
    assert [r["seq"] for r in records] == list(range(1, tasks * each + 1))
    for n in range(tasks):
        mine = [r["trace_id"] for r in records if str(r["trace_id"]).startswith(f"{n}-")]
        assert mine == [f"{n}-{i}" for i in range(each)]
    assert_verifies(settings)


def test_full_queue_is_loud_counted_and_fails_closed(tmp_path: Path, errors: list[str]) -> None:
    settings = make_settings(tmp_path, queue_size=5, fail_closed=True)
    reported: list[tuple[str, int]] = []

    async def main() -> None:
        log = AuditLog(settings, on_failure=lambda reason, n: reported.append((reason, n)))
        await log.start()
        for i in range(20):  # no await: the writer cannot drain in between
            log.record(request(i, content=False))
        assert (log.failures, log.healthy) == (15, False)
        await log.flush()
        assert log.healthy  # a batch was written since
        await log.aclose()
        assert log.written == 5

    asyncio.run(main())
    assert reported == [("queue_full", 1)] * 15
    assert any("1 record(s) lost (queue_full)" in m for m in errors)
    assert any("15 record(s) lost (queue_full) in all" in m for m in errors)
    assert_verifies(settings)


def test_write_failure_is_loud_counted_and_cut_back(
    tmp_path: Path, errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, fail_closed=True, instance_id="gw")
    reported: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def main() -> None:
        log = AuditLog(settings, on_failure=lambda reason, n: reported.append((reason, n)))
        await log.start()
        log.record(request(0, content=False))
        await log.flush()
        monkeypatch.setattr(os, "fsync", disk_full)
        for i in range(1, 4):
            log.record(request(i, content=False))
        await log.flush()
        assert (log.failures, log.healthy) == (3, False)
        monkeypatch.setattr(os, "fsync", real_fsync)
        log.record(request(4, content=False))
        await log.flush()
        assert log.healthy
        await log.aclose()

    asyncio.run(main())
    assert reported == [("write_failed: OSError", 3)]
    assert any("3 record(s) lost (write_failed: OSError)" in m for m in errors)
    records = records_of(settings)
    assert [(r["seq"], r["tokens_in"]) for r in records] == [(1, 10), (2, 14)]
    assert_verifies(settings)


def test_record_before_start_is_a_counted_loss(tmp_path: Path, errors: list[str]) -> None:
    log = AuditLog(make_settings(tmp_path))
    log.record(request(0, content=False))
    assert log.failures == 1
    assert any("writer_not_running" in m for m in errors)


def test_aclose_drains_the_queue(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, batch_size=7)

    async def main() -> AuditLog:
        log = AuditLog(settings)
        await log.start()
        for i in range(100):
            log.record(request(i, content=False))
        await log.aclose()
        return log

    assert asyncio.run(main()).written == 100
    assert len(records_of(settings)) == 100


def test_fixed_instance_resumes_its_chain_and_repairs_a_torn_line(
    tmp_path: Path, errors: list[str]
) -> None:
    settings = make_settings(tmp_path, instance_id="gw-fixed")

    async def run(day: str, start: int) -> None:
        log = AuditLog(settings)
        await log.start()
        for i in range(start, start + 5):
            log.record(request(i, day, content=False))
        await log.aclose()

    asyncio.run(run(DAYS[0], 0))
    path = settings.directory / DAYS[0] / "gw-fixed.jsonl"
    with path.open("ab") as f:
        f.write(b'{"seq":6,"chain":"gw-f')  # a crash mid-line
    asyncio.run(run(DAYS[1], 5))
    assert [r["seq"] for r in records_of(settings)] == list(range(1, 11))
    assert any("torn last line" in m for m in errors)
    assert_verifies(settings)


def test_one_live_writer_per_chain(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def main() -> None:
        first = AuditLog(settings)
        await first.start()
        with pytest.raises(AuditConfigError, match="in use"):
            await AuditLog(settings).start()
        await first.aclose()

    asyncio.run(main())


def test_records_never_go_back_a_day(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def main() -> None:
        log = AuditLog(settings)
        await log.start()
        log.record(request(0, DAYS[1], content=False))
        log.record(request(1, DAYS[0], content=False))  # a clock that stepped back
        await log.aclose()

    asyncio.run(main())
    assert not (settings.directory / DAYS[0]).exists()
    assert len(read_lines(settings.directory / DAYS[1] / "gw.jsonl")) == 2


def test_writing_needs_the_keys(tmp_path: Path) -> None:
    with pytest.raises(AuditConfigError, match="hmac_key"):
        AuditLog(AuditSettings(directory=tmp_path))
    unsigned = make_settings(tmp_path).model_copy(update={"signing_key_path": None})

    async def main() -> None:
        await AuditLog(unsigned).start()

    with pytest.raises(AuditConfigError, match="signing"):
        asyncio.run(main())


def test_records_are_stamped_when_recorded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def main() -> None:
        log = AuditLog(settings)
        await log.start()
        log.record({"kind": "admin", "action": "keys.create", "trace_id": "t"})
        await log.aclose()

    asyncio.run(main())
    (record,) = records_of(settings)
    assert isinstance(record["ts"], str) and str(record["ts"]).endswith("Z")
    assert (settings.directory / str(record["ts"])[:10] / "gw.jsonl").exists()


def test_a_chain_whose_head_was_deleted_does_not_resume(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def run() -> None:
        log = AuditLog(settings)
        await log.start()
        log.record(request(0, content=False))
        await log.aclose()

    asyncio.run(run())
    for slot in settings.heads_dir.glob("gw.head*.json"):  # both of the head's slots
        slot.unlink()
    with pytest.raises(AuditConfigError, match="no signed head"):
        asyncio.run(run())
