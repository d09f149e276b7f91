"""The S3 path: LanceDB on s3://bucket/prefix at a real S3-compatible server on 127.0.0.1.

The session's moto server (``tests/s3.py``, the one every bucket test shares) is a
real HTTP S3 endpoint running in this process's thread; the knowledge base reaches it
through LanceDB's object store, with a custom endpoint, plain http and fake keys, as
it would reach MinIO or Ceph. Each test gets its own bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from functions.knowledge import KnowledgeBase, KnowledgeSettings
from functions.storage import StorageSettings
from tests.functions.knowledge.conftest import Caller, write_docs
from tests.s3 import CREDENTIALS, s3_client


@pytest.fixture
def s3_settings(s3_storage: StorageSettings) -> KnowledgeSettings:
    """The knowledge base under ``kb/`` of a new bucket of the session's S3 server."""
    assert s3_storage.uri is not None
    return KnowledgeSettings.model_validate(
        {
            "uri": s3_storage.uri.replace("/state", "/kb"),
            "s3_endpoint": s3_storage.s3_endpoint,
            "s3_allow_http": True,
            "s3_access_key_id": CREDENTIALS["aws_access_key_id"],
            "s3_secret_access_key": CREDENTIALS["aws_secret_access_key"],
        }
    )


def test_storage_options_for_s3(s3_settings: KnowledgeSettings) -> None:
    options = s3_settings.storage_options()
    assert options["allow_http"] == "true" and options["endpoint"].startswith("http://127.0.0.1")
    assert KnowledgeSettings(uri="/vol/kb").storage_options() == {}


def test_ingest_retrieve_and_replace_on_s3(
    s3_settings: KnowledgeSettings,
    make_kb: Callable[..., KnowledgeBase],
    tmp_path: Path,
) -> None:
    root = write_docs(tmp_path / "docs", ["en/leave-policy.md", "zh/大熊猫.html"])
    kb = make_kb(base=s3_settings)
    first = kb.ingest([root], "docs", root=root)
    assert (first.added, first.failed) == (2, ())

    [top] = kb.retrieve("大熊猫一天吃多少竹子？", ["docs"], Caller(), top_k=1)
    assert (top.source, top.location) == ("zh/大熊猫.html", "食性")
    again = kb.ingest([root], "docs", root=root)
    assert (again.unchanged, again.version) == (2, None)

    (root / "en/leave-policy.md").write_text("# Leave\n\nEveryone gets 40 days of leave.\n")
    assert kb.ingest([root], "docs", root=root).replaced == 1
    assert kb.delete_document("docs", "zh/大熊猫.html") > 0

    fresh = make_kb(base=s3_settings)  # another process, e.g. the gateway
    assert [d.source for d in fresh.list_documents("docs")] == ["en/leave-policy.md"]
    [top] = fresh.retrieve("How much leave?", ["docs"], Caller(), top_k=1)
    assert "40 days" in top.text

    assert s3_settings.s3_endpoint is not None
    bucket, prefix = kb.settings.uri.removeprefix("s3://").split("/", 1)
    listed = s3_client(s3_settings.s3_endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(o["Key"].endswith(".lance") for o in listed.get("Contents", []))
