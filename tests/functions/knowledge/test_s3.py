"""The S3 path: LanceDB on s3://bucket/prefix at a real S3-compatible server on 127.0.0.1.

moto's server mode is a real HTTP S3 endpoint running in this process's thread;
the knowledge base reaches it through LanceDB's object store, with a custom
endpoint, plain http and fake keys, as it would reach MinIO or Ceph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from functions.knowledge import KnowledgeBase, KnowledgeSettings
from tests.conftest import free_port
from tests.functions.knowledge.conftest import Caller, write_docs

BUCKET = "enclave-kb"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
    client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str, request: pytest.FixtureRequest) -> KnowledgeSettings:
    return KnowledgeSettings.model_validate(
        {
            "uri": f"s3://{BUCKET}/{request.node.name}",
            "s3_endpoint": s3_endpoint,
            "s3_allow_http": True,
            "s3_access_key_id": KEYS["aws_access_key_id"],
            "s3_secret_access_key": KEYS["aws_secret_access_key"],
        }
    )


def test_storage_options_for_s3(s3_settings: KnowledgeSettings) -> None:
    options = s3_settings.storage_options()
    assert options["allow_http"] == "true" and options["endpoint"].startswith("http://127.0.0.1")
    assert KnowledgeSettings(uri="/vol/kb").storage_options() == {}


def test_ingest_retrieve_and_replace_on_s3(
    s3_settings: KnowledgeSettings,
    s3_endpoint: str,
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

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=kb.settings.uri.split("/", 3)[3])
    assert any(o["Key"].endswith(".lance") for o in listed.get("Contents", []))
