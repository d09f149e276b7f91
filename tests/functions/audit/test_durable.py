"""``durable()``: a record is on disk and under the signed head before the call returns.

Group commit: concurrent callers share one write, one fsync and one head. Every
way a record can fail to become durable raises :class:`AuditUnavailableError`
and is counted as :meth:`AuditLog.record` counts it.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.datastructures import Headers

from functions.audit import AuditLog, AuditSettings, load_keys, verify
from functions.audit import files as files_module
from functions.audit.errors import AuditUnavailableError
from functions.audit.local import RequestAudit
from functions.audit.store import fsync_dir, newest_head
from functions.context import Principal, RequestContext
from tests.functions.audit.conftest import local, make_settings, request
from tests.functions.audit.test_writer import assert_verifies, records_of


def run(settings: AuditSettings, body: Callable[[AuditLog], Awaitable[Any]], **kw: Any) -> Any:
    """``body(log)`` with a started log, closed afterwards."""

    async def main() -> Any:
        log = AuditLog(settings, **kw)
        await log.start()
        try:
            return await body(log)
        finally:
            await log.aclose()

    return asyncio.run(main())


def head_seq(settings: AuditSettings, chain: str) -> int:
    slots = local(settings).head_slots()[chain]
    head, faults = newest_head(slots, load_keys(settings).public, chain)
    assert head is not None and not faults
    return int(head["seq"])


def test_durable_returns_with_the_record_on_disk_under_the_head(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def body(log: AuditLog) -> None:
        for i in range(3):
            await log.durable({**request(i, content=False), "trace_id": f"t-{i}"})
            # no flush: the record and a head naming it are there already
            assert [r["trace_id"] for r in records_of(settings)][-1] == f"t-{i}"
            assert head_seq(settings, "gw") == i + 1

    run(settings, body)
    assert_verifies(settings)


def test_concurrent_callers_share_commits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")
    callers = 64

    async def body(log: AuditLog) -> tuple[int, int]:
        await log.durable(request(0, content=False))  # the files exist: a steady state
        before = log.commits
        await asyncio.gather(
            *(
                log.durable({**request(n, content=False), "trace_id": f"c-{n}"})
                for n in range(callers)
            )
        )
        return log.commits - before, head_seq(settings, "gw")

    commits, seq = run(settings, body)
    assert seq == callers + 1
    assert commits <= 2  # the first caller's commit, then everyone queued behind it
    assert_verifies(settings)


def test_mixed_with_record_keeps_one_order(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw", batch_size=4)

    async def body(log: AuditLog) -> None:
        async def one(n: int) -> None:
            event = {**request(n, content=False), "trace_id": f"m-{n}"}
            if n % 2:
                await log.durable(event)
            else:
                log.record(event)

        await asyncio.gather(*(one(n) for n in range(40)))

    run(settings, body)
    records = records_of(settings)
    assert [r["seq"] for r in records] == list(range(1, 41))
    assert sorted(str(r["trace_id"]) for r in records) == sorted(f"m-{n}" for n in range(40))


def test_a_failed_write_raises_in_every_waiter_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, instance_id="gw", fail_closed=True)
    reported: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def body(log: AuditLog) -> None:
        await log.durable(request(0, content=False))
        monkeypatch.setattr(os, "fsync", disk_full)
        results = await asyncio.gather(
            *(log.durable(request(i, content=False)) for i in range(1, 6)), return_exceptions=True
        )
        assert all(isinstance(r, AuditUnavailableError) for r in results), results
        assert {r.reason for r in results if isinstance(r, AuditUnavailableError)} == {
            "write_failed: OSError"
        }
        assert (log.failures, log.healthy) == (5, False)
        monkeypatch.setattr(os, "fsync", real_fsync)
        await log.durable(request(6, content=False))
        assert log.healthy

    run(settings, body, on_failure=lambda reason, n: reported.append((reason, n)))
    assert sum(n for _, n in reported) == 5
    assert [r["tokens_in"] for r in records_of(settings)] == [10, 16]
    assert_verifies(settings)


def test_a_head_that_cannot_be_signed_is_not_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    def no_head(sink: files_module.FileSink, slot: int, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    async def body(log: AuditLog) -> None:
        await log.durable(request(0, content=False))
        monkeypatch.setattr(files_module.FileSink, "_overwrite", no_head)
        with pytest.raises(AuditUnavailableError) as caught:
            await log.durable(request(1, content=False))
        assert caught.value.reason == "head_write_failed"
        assert log.failures == 0  # written, just not under a head: not a lost record

    run(settings, body)


def test_queue_full_and_stopped_writer_raise_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queue_size=2)

    async def body(log: AuditLog) -> None:
        for i in range(2):  # no await: the writer cannot drain in between
            log.record(request(i, content=False))
        with pytest.raises(AuditUnavailableError) as caught:
            await log.durable(request(2, content=False))
        assert caught.value.reason == "queue_full"

    run(settings, body)

    async def stopped() -> None:
        with pytest.raises(AuditUnavailableError) as caught:
            await AuditLog(settings).durable(request(0, content=False))
        assert caught.value.reason == "writer_not_running"

    asyncio.run(stopped())


def test_anonymous_past_the_budget_waits_for_its_summary(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, anonymous_queue_size=2, instance_id="gw")
    refusal = {"kind": "request", "route": "/v1/chat/completions", "status": 401}

    async def body(log: AuditLog) -> None:
        await asyncio.gather(*(log.durable(refusal, anonymous=True) for _ in range(10)))
        kinds = [r["kind"] for r in records_of(settings)]
        assert kinds.count("request") == 2
        assert kinds.count("refusals") >= 1
        assert head_seq(settings, "gw") == len(kinds)

    run(settings, body)
    summed = [r for r in records_of(settings) if r["kind"] == "refusals"]
    assert sum(int(str(r["total"])) for r in summed) == 8
    assert_verifies(settings)


def test_a_cancelled_caller_does_not_cancel_the_write(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def body(log: AuditLog) -> None:
        task = asyncio.create_task(log.durable({**request(0, content=False), "trace_id": "gone"}))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await log.flush()

    run(settings, body)
    assert [r["trace_id"] for r in records_of(settings)] == ["gone"]


def test_a_new_days_file_and_directory_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, instance_id="gw")
    synced: list[Path] = []
    real = fsync_dir

    def spy(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(files_module, "fsync_dir", spy)

    async def body(log: AuditLog) -> None:
        assert synced == [tmp_path, tmp_path]  # where the new audit and heads folders are
        synced.clear()
        await log.durable(request(0, "2025-03-01", content=False))
        day = settings.directory / "2025-03-01"
        assert synced == [day, settings.directory, settings.heads_dir]  # the head's two slots
        await log.durable(request(1, "2025-03-01", content=False))
        assert len(synced) == 3  # existing files: their data's fsync is enough

    run(settings, body)


# RequestAudit: what the gateway calls


def chat_ctx(principal: Principal | None) -> RequestContext:
    return RequestContext(request_id="req-1", headers=Headers(), principal=principal)


def broken(settings: AuditSettings) -> RequestAudit:
    return RequestAudit(AuditLog(settings))  # never started: nothing can be made durable


def test_request_durable_refuses_only_when_fail_closed(tmp_path: Path) -> None:
    member = Principal("key-1", tenant="acme")
    closed = broken(make_settings(tmp_path / "closed", fail_closed=True))
    opened = broken(make_settings(tmp_path / "open"))

    async def main() -> None:
        with pytest.raises(AuditUnavailableError) as caught:
            await closed.request_durable(chat_ctx(member), status=200, latency_s=0.1)
        assert (caught.value.status_code, caught.value.code) == (503, "audit_unavailable")
        with pytest.raises(AuditUnavailableError):
            await closed.admin_durable(member, "keys.create", {"key_id": "k"})
        with pytest.raises(AuditUnavailableError):
            await closed.endpoint_durable(member, "/v1/filter", status=200, latency_s=0.1)
        await opened.request_durable(chat_ctx(member), status=200, latency_s=0.1)
        await opened.endpoint_durable(None, "/v1/filter", status=401, latency_s=0.1)
        await RequestAudit(None).request_durable(chat_ctx(None), status=200, latency_s=0.1)

    asyncio.run(main())
    assert closed.log is not None and opened.log is not None
    assert (closed.log.failures, opened.log.failures) == (3, 2)  # counted either way


def test_request_audit_durable_records(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")
    member = Principal("key-1", tenant="acme")

    async def body(log: AuditLog) -> None:
        audit = RequestAudit(log)
        await audit.request_durable(chat_ctx(member), status=200, latency_s=0.25)
        await audit.admin_durable(member, "keys.create", {"key_id": "k-2"})
        async with audit.opened_durable("/v1/retrieve") as call:
            call.principal, call.model = member, "smollm2"
        assert head_seq(settings, "gw") == 3
        with pytest.raises(PermissionError):
            async with audit.opened_durable("/v1/embeddings") as call:
                raise PermissionError
        assert head_seq(settings, "gw") == 4

    run(settings, body)
    records = records_of(settings)
    assert [(r["kind"], r.get("route"), r["status"]) for r in records] == [
        ("request", None, 200),
        ("admin", None, 200),
        ("request", "/v1/retrieve", 200),
        ("request", "/v1/embeddings", 500),
    ]
    assert records[0]["trace_id"] == "req-1" and records[1]["target"] == "k-2"


def test_a_committed_tail_cut_off_fails_verify_naming_chain_and_gap(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")

    async def body(log: AuditLog) -> None:
        await asyncio.gather(*(log.durable(request(i, content=False)) for i in range(10)))

    run(settings, body)
    assert_verifies(settings)
    path = settings.directory / "2025-03-01" / "gw.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))
    keys = load_keys(settings)

    report = verify(local(settings), keys.public, keys.hmac)
    (issue,) = report.issues
    assert (issue.kind, issue.chain, issue.seq) == ("truncated", "gw", 10)
    assert "chain gw ends at seq 7" in issue.detail and "seqs 8-10 missing" in issue.detail
    assert "FAILED" in report.render()

    edited = orjson.loads(lines[2])
    edited["status"] = 500
    path.write_bytes(b"".join([*lines[:2], orjson.dumps(edited) + b"\n", *lines[3:]]))
    report = verify(local(settings), keys.public, keys.hmac)
    assert report.kinds() == {"edited"}
