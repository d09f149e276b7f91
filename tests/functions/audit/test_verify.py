"""``verify`` names every kind of tampering, and passes what was not tampered with."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from functions.audit import AuditSettings, VerifyReport, load_keys, verify, verify_command
from functions.audit.chain import ChainWriter
from functions.audit.store import head_path, sign
from tests.functions.audit.conftest import DAYS, PER_DAY, local, log_file, read_lines, request

A_DAY1 = f"{DAYS[0]}/gw-a.jsonl"


def check(settings: AuditSettings, hmac_key: bytes | None = None) -> VerifyReport:
    keys = load_keys(settings, signing=False)
    return verify(local(settings), keys.public, hmac_key or keys.hmac)


def test_intact_log_verifies_with_counts(audit: AuditSettings) -> None:
    report = check(audit)
    assert report.ok, report.render()
    assert (report.chains, report.files, report.records) == (2, 4, 4 * PER_DAY)
    assert report.warnings == ()


def test_verify_needs_only_the_public_key(audit: AuditSettings) -> None:
    public_only = audit.model_copy(update={"signing_key_path": None, "signing_key": None})
    out = io.StringIO()
    assert verify_command(public_only, out) == 0
    assert "audit verify: OK: 2 chain(s), 4 file(s), 40 record(s)" in out.getvalue()


def test_edited_field_is_named_by_file_line_and_seq(audit: AuditSettings) -> None:
    path = log_file(audit, DAYS[0], "gw-a")
    lines = read_lines(path)
    record = orjson.loads(lines[4])
    record["tokens_out"] = 1
    lines[4] = orjson.dumps(record) + b"\n"
    path.write_bytes(b"".join(lines))
    report = check(audit)
    assert report.kinds() == {"edited"}
    (issue,) = report.issues
    assert (issue.file, issue.line, issue.seq) == (A_DAY1, 5, 5)


def test_deleted_record_is_named_as_a_gap(audit: AuditSettings) -> None:
    path = log_file(audit, DAYS[0], "gw-a")
    lines = read_lines(path)
    path.write_bytes(b"".join(lines[:4] + lines[5:]))
    (issue,) = check(audit).issues
    assert (issue.kind, issue.seq, issue.chain) == ("deleted", 5, "gw-a")
    assert "seq 5 missing (1 record(s)) between " + A_DAY1 + " line 4" in issue.detail


def test_swapped_records_are_reordered(audit: AuditSettings) -> None:
    path = log_file(audit, DAYS[1], "gw-b")
    lines = read_lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    (issue,) = check(audit).issues
    assert (issue.kind, issue.seq, issue.line) == ("reordered", PER_DAY + 3, 4)
    assert issue.file == f"{DAYS[1]}/gw-b.jsonl"


def test_truncated_tail_is_caught_by_the_signed_head(audit: AuditSettings) -> None:
    path = log_file(audit, DAYS[1], "gw-b")
    path.write_bytes(b"".join(read_lines(path)[:-2]))
    (issue,) = check(audit).issues
    assert (issue.kind, issue.chain) == ("truncated", "gw-b")
    assert "names seq 20" in issue.detail and "2 record(s) cut off" in issue.detail


def test_deleted_first_day_file_is_a_gap_at_a_file_boundary(audit: AuditSettings) -> None:
    log_file(audit, DAYS[0], "gw-a").unlink()
    (issue,) = check(audit).issues
    assert (issue.kind, issue.seq) == ("deleted", 1)
    assert "seqs 1-10 missing" in issue.detail and "whole day file" in issue.detail


def test_deleted_last_day_file_is_truncation(audit: AuditSettings) -> None:
    log_file(audit, DAYS[1], "gw-a").unlink()
    (issue,) = check(audit).issues
    assert issue.kind == "truncated"
    assert f"in {DAYS[1]}/gw-a.jsonl" in issue.detail


def test_forged_head_fails_its_signature(audit: AuditSettings) -> None:
    assert audit.heads_directory is not None
    path = head_path(audit.heads_directory, "gw-a")
    outer = orjson.loads(path.read_bytes())
    outer["doc"]["seq"] = 12  # hides the last 8 records' removal
    path.write_bytes(orjson.dumps(outer))
    report = check(audit)
    assert report.kinds() == {"forged_head"}
    assert report.issues[0].chain == "gw-a"


def test_head_signed_by_another_key_is_forged(audit: AuditSettings) -> None:
    assert audit.heads_directory is not None
    path = head_path(audit.heads_directory, "gw-b")
    doc = orjson.loads(path.read_bytes())["doc"]
    path.write_bytes(sign(Ed25519PrivateKey.generate(), doc))
    assert check(audit).kinds() == {"forged_head"}


def test_missing_head_is_reported(audit: AuditSettings) -> None:
    assert audit.heads_directory is not None
    head_path(audit.heads_directory, "gw-a").unlink()
    assert check(audit).kinds() == {"missing_head"}


def test_duplicated_record_is_reported(audit: AuditSettings) -> None:
    path = log_file(audit, DAYS[0], "gw-a")
    lines = read_lines(path)
    path.write_bytes(b"".join([*lines[:6], lines[2], *lines[6:]]))
    (issue,) = check(audit).issues
    assert (issue.kind, issue.seq, issue.line) == ("duplicate", 3, 7)


def test_record_moved_to_another_chain_is_misplaced(audit: AuditSettings) -> None:
    a, b = log_file(audit, DAYS[0], "gw-a"), log_file(audit, DAYS[0], "gw-b")
    lines_a, lines_b = read_lines(a), read_lines(b)
    lines_b[4] = lines_a[4]  # same seq, other chain's record
    b.write_bytes(b"".join(lines_b))
    assert "misplaced" in check(audit).kinds()


def test_wrong_hmac_key_fails_every_record(audit: AuditSettings) -> None:
    report = check(audit, hmac_key=b"k" * 32)
    assert report.kinds() == {"edited"}
    assert len(report.issues) == 4 * PER_DAY


def test_records_after_the_head_are_a_warning(audit: AuditSettings) -> None:
    """A crash between the fsync of records and the head's rewrite is not tampering."""
    assert audit.heads_directory is not None
    paths = [head_path(audit.heads_directory, "gw-a", slot) for slot in (0, 1)]
    before = [path.read_bytes() for path in paths]
    writer = ChainWriter(local(audit), "gw-a", load_keys(audit), False)
    writer.append([request(99, DAYS[1], content=False)])
    writer.close()
    for path, data in zip(paths, before, strict=True):
        path.write_bytes(data)
    report = check(audit)
    assert report.ok, report.render()
    assert [w.kind for w in report.warnings] == ["unsigned_tail"]


def test_verify_command_exit_codes(audit: AuditSettings, tmp_path: Path) -> None:
    path = log_file(audit, DAYS[0], "gw-b")
    path.write_bytes(path.read_bytes().replace(b'"status":200', b'"status":500', 1))
    out = io.StringIO()
    assert verify_command(audit, out) == 1
    assert "FAILED, 1 issue(s)" in out.getvalue()
    assert f"edited        {DAYS[0]}/gw-b.jsonl line 1 seq 1" in out.getvalue()
    unkeyed = audit.model_copy(update={"hmac_key": None})
    assert verify_command(unkeyed, io.StringIO()) == 2
