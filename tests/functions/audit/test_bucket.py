"""The audit log in a bucket (moto's real S3 server): one object per flush, and verify on it.

Two writers flush ``FLUSHES`` batches each, over two days; then one object, one
head or one writer's objects are edited or deleted through the bucket, and
``verify`` must name what was done and where.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import io
import secrets
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.audit import (
    AuditConfigError,
    AuditLog,
    AuditSettings,
    VerifyReport,
    load_keys,
    prune,
    rotate_kek,
    verify,
    verify_command,
)
from functions.audit.bucket import BucketStorage, open_storage, segment_key
from functions.audit.envelope import decrypt_content, parse_keyring
from functions.audit.local import resolve_audit
from functions.errors import StorageUnavailableError
from functions.settings import Settings
from functions.storage import S3Objects, StorageSettings
from functions.storage.objects import Blob
from infra import cli_audit
from tests.functions.audit.conftest import DAYS, INSTANCES, PROMPT, make_settings, request

FLUSHES = 4  # per writer: two on each day
PER_FLUSH = 5
FIRST_SEQS = [1 + n * PER_FLUSH for n in range(FLUSHES)]


def bucket_of(storage: StorageSettings) -> BucketStorage:
    store = open_storage(AuditSettings(), storage)
    assert isinstance(store, BucketStorage)
    return store


def day_of_flush(n: int) -> str:
    return DAYS[n * len(DAYS) // FLUSHES]


def write_flushes(
    settings: AuditSettings, store: BucketStorage, instances: tuple[str, ...] = INSTANCES
) -> None:
    """``FLUSHES`` flushes of ``PER_FLUSH`` records from each writer, the writers concurrent."""

    async def main() -> None:
        logs = [
            AuditLog(settings.model_copy(update={"instance_id": name}), storage=store)
            for name in instances
        ]
        for log in logs:
            await log.start()
        for n in range(FLUSHES):
            for i in range(PER_FLUSH):  # no await between: one batch, one object
                for log in logs:
                    log.record(request(n * PER_FLUSH + i, day_of_flush(n)))
            await asyncio.gather(*(log.flush() for log in logs))
        for log in logs:
            await log.aclose()
            assert (log.failures, log.commits) == (0, FLUSHES)

    asyncio.run(main())


def check(settings: AuditSettings, store: BucketStorage) -> VerifyReport:
    keys = load_keys(settings, signing=False)
    return verify(store, keys.public, keys.hmac)


def key_of(chain: str, flush: int) -> str:
    return segment_key(chain, day_of_flush(flush), FIRST_SEQS[flush])


@pytest.fixture
def written(s3_storage: StorageSettings, tmp_path: Path) -> tuple[AuditSettings, BucketStorage]:
    settings, store = make_settings(tmp_path), bucket_of(s3_storage)
    write_flushes(settings, store)
    return settings, store


def test_each_flush_is_one_object_and_the_chains_verify(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    logs = [k for k in store.objects.keys("logs/") if k.startswith("logs/gw-a/")]
    assert logs == [key_of("gw-a", n) for n in range(FLUSHES)]
    blob = store.objects.get(key_of("gw-a", 1))
    assert isinstance(blob, Blob)
    records = [orjson.loads(line) for line in blob.data.splitlines()]
    assert [r["seq"] for r in records] == list(range(6, 11))
    head = orjson.loads(store.objects.get("heads/gw-b.head.json").data)["doc"]  # type: ignore[union-attr]
    assert (head["seq"], head["file"]) == (FLUSHES * PER_FLUSH, key_of("gw-b", FLUSHES - 1))
    report = check(settings, store)
    assert report.ok, report.render()
    assert (report.chains, report.files, report.records) == (2, 2 * FLUSHES, 40)
    assert not settings.directory.exists()  # nothing written to the local directory


def test_an_edited_record_is_named_by_object_line_and_seq(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    key = key_of("gw-b", 2)
    blob = store.objects.get(key)
    assert isinstance(blob, Blob)
    lines = blob.data.splitlines(keepends=True)
    record = orjson.loads(lines[3])
    record["status"] = 500
    lines[3] = orjson.dumps(record) + b"\n"
    store.objects.put(key, b"".join(lines))  # whoever holds the bucket's credentials
    (issue,) = check(settings, store).issues
    assert (issue.kind, issue.chain, issue.file, issue.line, issue.seq) == (
        "edited",
        "gw-b",
        key,
        4,
        FIRST_SEQS[2] + 3,
    )


def test_a_deleted_object_in_the_middle_is_a_gap(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    store.objects.delete(key_of("gw-a", 1))
    (issue,) = check(settings, store).issues
    assert (issue.kind, issue.chain, issue.seq) == ("deleted", "gw-a", 6)
    assert "seqs 6-10 missing (5 record(s))" in issue.detail
    assert f"between {key_of('gw-a', 0)} line 5 and {key_of('gw-a', 2)} line 1" in issue.detail
    assert "a whole object may have been deleted" in issue.detail


def test_a_deleted_last_object_is_caught_by_the_head(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    store.objects.delete(key_of("gw-b", FLUSHES - 1))
    (issue,) = check(settings, store).issues
    assert (issue.kind, issue.chain) == ("truncated", "gw-b")
    assert "names seq 20" in issue.detail and "5 record(s) cut off" in issue.detail


def test_a_deleted_head_and_a_deleted_chain_are_named(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    store.objects.delete("heads/gw-a.head.json")
    for key in store.objects.keys("logs/gw-b/"):
        store.objects.delete(key)
    issues = {issue.chain: issue for issue in check(settings, store).issues}
    assert issues["gw-a"].kind == "missing_head"
    assert issues["gw-b"].kind == "missing_chain"
    assert "names 20 record(s)" in issues["gw-b"].detail
    assert "whole chain was deleted" in issues["gw-b"].detail
    out = io.StringIO()
    assert verify_command(settings, out, storage=store) == 1
    assert "missing_chain" in out.getvalue() and "missing_head" in out.getvalue()


def test_another_chains_signed_head_copied_over_a_deleted_chain_is_caught(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    """The reviewer's attack: gw-a's records deleted, gw-b's head filed under gw-a's name.
    Each signature verifies; the chain it names does not."""
    settings, store = written
    for key in store.objects.keys("logs/gw-a/"):
        store.objects.delete(key)
    other = store.objects.get("heads/gw-b.head.json")
    assert isinstance(other, Blob)
    store.objects.put("heads/gw-a.head.json", other.data)
    report = check(settings, store)
    assert not report.ok
    kinds = {(issue.chain, issue.kind) for issue in report.issues}
    assert ("gw-a", "forged_head") in kinds, report.render()


def test_a_head_whose_answer_was_lost_does_not_stall_the_chain(
    s3_storage: StorageSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head PUT that landed but whose answer never came: the next head write meets a
    newer ETag than it knows, recognises its own earlier head and goes on."""
    settings, store = make_settings(tmp_path), bucket_of(s3_storage)
    objects = store.objects
    real_put = objects.put
    lost: list[str] = []

    def put(key: str, data: bytes, **kwargs: Any) -> str:
        etag = real_put(key, data, **kwargs)
        if key.startswith("heads/") and not lost:
            lost.append(key)
            raise StorageUnavailableError("Operator storage could not write (timeout).")
        return etag

    monkeypatch.setattr(objects, "put", put)

    async def main() -> tuple[int, int]:
        log = AuditLog(settings.model_copy(update={"instance_id": "gw-a"}), storage=store)
        await log.start()
        for n in range(3):
            log.record(request(n, DAYS[0]))
            await log.flush()
        await log.aclose()
        return log.failures, log.commits

    failures, commits = asyncio.run(main())
    assert lost and commits >= 2, (failures, commits)
    monkeypatch.undo()
    report = check(settings, store)
    assert report.ok, report.render()


def test_two_live_writers_on_one_chain_fail_loudly(
    s3_storage: StorageSettings, tmp_path: Path, errors: list[str]
) -> None:
    settings = make_settings(tmp_path, instance_id="gw")
    store = bucket_of(s3_storage)

    async def main() -> AuditLog:
        first, second = AuditLog(settings, storage=store), AuditLog(settings, storage=store)
        await first.start()
        await second.start()  # both see an empty chain
        await first.durable(request(0, content=False))
        second.record(request(1, content=False))
        await second.flush()
        await first.aclose()
        await second.aclose()
        return second

    second = asyncio.run(main())
    assert second.failures == 1
    assert any("write_failed: AuditConflictError" in m for m in errors)
    report = check(settings, store)  # the first writer's record stands
    assert report.ok and report.records == 1, report.render()


def test_a_fixed_instance_resumes_its_chain_from_its_last_object(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    settings, store = make_settings(tmp_path), bucket_of(s3_storage)
    write_flushes(settings, store, ("gw-fixed",))
    write_flushes(settings, store, ("gw-fixed",))
    keys = store.objects.keys("logs/gw-fixed/")
    assert len(keys) == 2 * FLUSHES and keys[-1].endswith(f"{FLUSHES * PER_FLUSH + 16:012d}.jsonl")
    report = check(settings, store)
    assert report.ok and report.records == 2 * FLUSHES * PER_FLUSH, report.render()


def test_prune_deletes_old_objects_behind_a_signed_checkpoint(
    written: tuple[AuditSettings, BucketStorage],
) -> None:
    settings, store = written
    keys = load_keys(settings)
    result = prune(store, keys, 1, today=dt.date(2025, 3, 3))
    assert (result.removed_days, result.checkpoints) == ((DAYS[0],), 2)
    assert [k for k in store.objects.keys("logs/") if f"/{DAYS[0]}/" in k] == []
    assert "heads/gw-a.pruned.json" in store.objects.keys("heads/")
    report = check(settings, store)
    assert report.ok and report.records == 20, report.render()
    store.objects.delete(key_of("gw-a", 2))  # not retention: still caught
    assert check(settings, store).kinds() == {"deleted"}


def test_content_capture_and_kek_rotation_in_a_bucket(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, capture_content=True)
    store = bucket_of(s3_storage)
    write_flushes(settings, store, ("gw-c",))
    everything = b"".join(
        blob.data
        for key in store.objects.keys("")
        if isinstance(blob := store.objects.get(key), Blob)
    )
    assert PROMPT.encode() not in everything
    sidecars = store.keyrings()
    assert len(sidecars) == FLUSHES
    new_id, new_key = "kek-new", secrets.token_bytes(32)
    rotated = rotate_kek(store, load_keys(settings).keks, (new_id, new_key))
    assert (rotated.files, rotated.rewrapped) == (FLUSHES, FLUSHES * PER_FLUSH)
    keyring = parse_keyring(store.objects.get(sidecars[0]).data)  # type: ignore[union-attr]
    first = orjson.loads(store.objects.get(key_of("gw-c", 0)).data.splitlines()[0])  # type: ignore[union-attr]
    content: Any = decrypt_content(first, keyring[1], {new_id: new_key})
    assert PROMPT in str(content["prompt"])
    assert check(settings, store).ok


def test_a_bucket_needs_configured_keys_and_writes_nothing_locally(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with pytest.raises(AuditConfigError, match="ENCLAVE_AUDIT_HMAC_KEY"):
        resolve_audit(AuditSettings(), data, s3_storage)
    assert not data.exists()
    seed = base64.b64encode(secrets.token_bytes(32)).decode()
    configured = AuditSettings.model_validate({"hmac_key": "h" * 32, "signing_key": seed})
    resolved = resolve_audit(configured, data, s3_storage)
    assert load_keys(resolved).signing is not None and not data.exists()
    assert isinstance(open_storage(resolved, s3_storage), BucketStorage)
    bucket, prefix = s3_storage.location()
    store = open_storage(resolved, s3_storage)
    assert isinstance(store, BucketStorage) and isinstance(store.objects, S3Objects)
    assert (store.objects.bucket, store.objects.prefix) == (bucket, f"{prefix}/audit")


def test_the_cli_on_a_bucket_says_what_to_do_and_writes_nothing_locally(
    s3_storage: StorageSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", storage=s3_storage)
    generate = argparse.Namespace(audit_command="rotate-key", generate=True)
    assert cli_audit.run(generate, settings) == 2
    assert "ENCLAVE_AUDIT_ACTIVE_KEK" in capsys.readouterr().out
    assert cli_audit.run(argparse.Namespace(audit_command="verify"), settings) == 2
    assert "set ENCLAVE_AUDIT_HMAC_KEY" in capsys.readouterr().out
    assert not (tmp_path / "data").exists()
