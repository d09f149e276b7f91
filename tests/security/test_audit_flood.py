"""I5: every request leaves one durable record, never crowded out by unauthenticated traffic.

Through the real writer (:class:`AuditLog`: its queue, its background batches, the
sealed files and ``verify``), fed by the gateway's own hook (:class:`RequestAudit`).
A flood of refusals without a key used to fill the one queue, so the records of
real callers that came next were dropped (and, with ``fail_closed``, the gateway
refused everyone). Fields a caller chooses used to be written whole: a 1 MB model
name made a 1 MB audit line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from functions.audit import AuditLog, AuditSettings
from functions.audit.local import RequestAudit
from functions.audit.records import MAX_ERROR_CHARS, MAX_FIELD_CHARS
from functions.context import Principal
from tests.functions.audit.conftest import make_settings
from tests.functions.audit.test_writer import assert_verifies

MEMBER = Principal(key_id="key-7f3a", tenant="acme")
ROUTE = "/v1/embeddings"


def records_of(settings: AuditSettings) -> list[dict[str, Any]]:
    """Every written record, file by file (one chain: in sequence)."""
    paths = sorted(settings.directory.rglob("*.jsonl"))
    return [orjson.loads(line) for path in paths for line in path.read_bytes().splitlines()]


def flood(settings: AuditSettings, refusals: int, answered: int) -> tuple[AuditLog, bool]:
    """``refusals`` unauthenticated refusals, then ``answered`` real records, with no await
    in between (so the writer cannot drain); then close. The log, and whether it was healthy."""

    async def main() -> tuple[AuditLog, bool]:
        log = AuditLog(settings)
        await log.start()
        audit = RequestAudit(log)
        for _ in range(refusals):
            audit.endpoint(None, ROUTE, status=401, latency_s=0.001, error="Invalid API key.")
        for i in range(answered):
            audit.endpoint(MEMBER, ROUTE, status=200, latency_s=0.01, tokens_in=i)
        healthy = log.healthy
        await log.aclose()
        return log, healthy

    return asyncio.run(main())


def test_a_flood_without_a_key_never_pushes_out_real_records(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, instance_id="gw", queue_size=5, anonymous_queue_size=3, fail_closed=True
    )
    log, healthy = flood(settings, refusals=500, answered=5)
    assert healthy and log.failures == 0  # nothing lost: fail_closed would refuse nobody
    records = records_of(settings)
    real = [r for r in records if r.get("principal") == MEMBER.key_id]
    assert [r["tokens_in"] for r in real] == [0, 1, 2, 3, 4]
    one_by_one = [r for r in records if r["kind"] == "request" and r["principal"] is None]
    summed = [r for r in records if r["kind"] == "refusals"]
    assert len(one_by_one) == 3  # the refusals' own budget
    assert sum(r["total"] for r in summed) == 497 == log.summed  # the rest, counted
    assert {k for r in summed for k in r["counts"]} == {f"{ROUTE} 401"}
    assert_verifies(settings)


def test_refusals_within_their_budget_are_written_one_by_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw", anonymous_queue_size=10)
    log, _ = flood(settings, refusals=4, answered=1)
    records = records_of(settings)
    assert [r["status"] for r in records] == [401, 401, 401, 401, 200]
    assert all(r["route"] == ROUTE for r in records)
    assert records[0]["error"] == "Invalid API key."
    assert log.summed == 0
    assert_verifies(settings)


def test_fields_a_caller_chooses_are_bounded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, instance_id="gw")
    huge = "M" * 1_000_000
    caller = Principal(key_id="k" * 1_000_000, tenant="t" * 100_000, role="r" * 100_000)

    async def main() -> None:
        log = AuditLog(settings)
        await log.start()
        audit = RequestAudit(log)
        audit.endpoint(
            caller,
            "/v1/" + huge,
            status=400,
            latency_s=0.001,
            model=huge,
            error="Unknown model " + huge,
            decisions={huge: huge, **{f"step{i}": "ok" for i in range(200)}},
        )
        audit.admin(caller, "keys." + huge, {"target": huge})
        await log.aclose()

    asyncio.run(main())
    records = records_of(settings)
    lines = [
        line for p in settings.directory.rglob("*.jsonl") for line in p.read_bytes().splitlines()
    ]
    assert len(records) == len(lines) == 2
    assert all(len(line) < 32_000 for line in lines)  # not a megabyte each
    request, admin = records
    marker = "…[truncated "
    for field in ("principal", "tenant", "role", "route", "model"):
        assert marker in request[field] and len(request[field]) < MAX_FIELD_CHARS + 40
    assert marker in request["error"] and len(request["error"]) < MAX_ERROR_CHARS + 40
    assert len(request["decisions"]) <= 65 and all(
        len(k) < MAX_FIELD_CHARS + 40 and len(v) < MAX_FIELD_CHARS + 40
        for k, v in request["decisions"].items()
    )
    for field in ("principal", "action", "target"):
        assert marker in admin[field] and len(admin[field]) < MAX_FIELD_CHARS + 40
    assert_verifies(settings)
