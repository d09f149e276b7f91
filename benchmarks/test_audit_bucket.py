"""What one audit commit (a flush) costs on a local disk and in a bucket (moto's S3 server).

A commit is what :meth:`AuditLog.durable` waits for and what the writer's thread
does per batch: seal the records, store them (local: append + fsync, with the
head replaced atomically and fsynced; bucket: one create-only PUT of a new object,
then one conditional PUT of the head), and sign the head. The bucket here is moto
on 127.0.0.1, so the figure is the client's and the protocol's cost without a
network: add two round trips to the store (two PUTs) for a real bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import report
from benchmarks.test_audit import event
from functions.audit import generate_keys, load_keys
from functions.audit.bucket import BucketStorage, open_storage
from functions.audit.chain import ChainWriter
from functions.audit.files import LocalStorage
from functions.audit.settings import AuditSettings
from functions.audit.store import AuditStorage
from functions.storage import StorageSettings
from tests.s3 import s3_server, s3_storage

__all__ = ["s3_server", "s3_storage"]


@pytest.fixture(params=["local", "bucket"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStorage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "audit", tmp_path / "audit-heads")
    else:
        bucket: StorageSettings = request.getfixturevalue("s3_storage")
        store = open_storage(AuditSettings(), bucket)
        assert isinstance(store, BucketStorage)
        yield store


@pytest.mark.parametrize("batch", [1, 64])
def test_one_commit(benchmark: Any, tmp_path: Path, storage: AuditStorage, batch: int) -> None:
    keys = load_keys(AuditSettings(**generate_keys(tmp_path / "keys")))
    writer = ChainWriter(storage, "bench", keys, False)
    events = [event(i) for i in range(batch)]
    writer.append(events)  # the day's file or first head exists: a steady state
    try:
        benchmark.pedantic(writer.append, args=(events,), rounds=30, iterations=1, warmup_rounds=2)
    finally:
        writer.close()
    kind = "bucket" if isinstance(storage, BucketStorage) else "local"
    median = benchmark.stats.stats.median
    report(
        benchmark,
        f"audit commit {kind} batch{batch}",
        ms_per_commit=median * 1e3,
        us_per_record=median * 1e6 / batch,
    )
