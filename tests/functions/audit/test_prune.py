"""Retention removes whole days behind a signed checkpoint; verify stays OK, tampering doesn't."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import orjson

from functions.audit import AuditSettings, VerifyReport, load_keys, prune, prune_command, verify
from functions.audit.store import checkpoint_path
from tests.functions.audit.conftest import (
    INSTANCES,
    PER_DAY,
    local,
    log_file,
    make_settings,
    write_days,
)

DAYS3 = ("2025-03-01", "2025-03-02", "2025-03-03")


def report_of(settings: AuditSettings) -> VerifyReport:
    keys = load_keys(settings)
    return verify(local(settings), keys.public, keys.hmac)


def three_days(tmp_path: Path) -> AuditSettings:
    settings = make_settings(tmp_path, retention_days=1)
    write_days(settings, DAYS3)
    return settings


def test_prune_keeps_verify_ok(tmp_path: Path) -> None:
    settings = three_days(tmp_path)
    keys = load_keys(settings)
    today = dt.date(2025, 3, 3)
    result = prune(local(settings), keys, 1, today=today)
    assert (result.removed_days, result.checkpoints) == (("2025-03-01",), len(INSTANCES))
    report = verify(local(settings), keys.public, keys.hmac)
    assert report.ok, report.render()
    assert report.records == 2 * PER_DAY * len(INSTANCES)
    point = orjson.loads(checkpoint_path(settings.heads_dir, "gw-a").read_bytes())["doc"]
    assert (point["seq"], point["before"]) == (PER_DAY, "2025-03-02")

    log_file(settings, "2025-03-02", "gw-a").unlink()  # not retention: still caught
    report = verify(local(settings), keys.public, keys.hmac)
    assert report.kinds() == {"deleted"}


def test_prune_everything_then_verify(tmp_path: Path) -> None:
    settings = three_days(tmp_path)
    out = io.StringIO()
    assert prune_command(settings, out, today=dt.date(2026, 1, 1)) == 0, out.getvalue()
    assert "removed 2025-03-01, 2025-03-02, 2025-03-03" in out.getvalue()
    report = report_of(settings)
    assert report.ok, report.render()


def test_prune_refuses_while_tampered(tmp_path: Path) -> None:
    settings = three_days(tmp_path)
    path = log_file(settings, "2025-03-01", "gw-b")
    path.write_bytes(path.read_bytes().replace(b'"tokens_out":21', b'"tokens_out":2', 1))
    out = io.StringIO()
    assert prune_command(settings, out, today=dt.date(2025, 3, 3)) == 1
    assert "refused" in out.getvalue() and "edited" in out.getvalue()
    assert path.exists()


def test_forged_checkpoint_is_reported(tmp_path: Path) -> None:
    settings = three_days(tmp_path)
    assert prune_command(settings, io.StringIO(), today=dt.date(2025, 3, 3)) == 0
    path = checkpoint_path(settings.heads_dir, "gw-b")
    outer = orjson.loads(path.read_bytes())
    outer["doc"]["seq"] = 15  # would hide seqs 11-15
    path.write_bytes(orjson.dumps(outer))
    kinds = report_of(settings).kinds()
    assert "forged_head" in kinds and "deleted" in kinds
