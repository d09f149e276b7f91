"""ENCLAVE_STORAGE_URI: where state lives, what follows from it, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from functions.settings import Settings


def test_the_default_is_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert not settings.storage.remote
    assert settings.state_dir == tmp_path
    assert settings.knowledge.uri == str(tmp_path / "knowledge")


def test_a_local_storage_uri_holds_the_knowledge_base(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", storage={"uri": str(tmp_path / "state")})
    assert settings.state_dir == tmp_path / "state"
    assert settings.knowledge.uri == str(tmp_path / "state" / "knowledge")


def test_a_bucket_holds_the_knowledge_base_with_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENCLAVE_STORAGE_URI", "s3://acme-enclave/prod/")
    monkeypatch.setenv("ENCLAVE_STORAGE_S3_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("ENCLAVE_STORAGE_S3_ALLOW_HTTP", "true")
    settings = Settings()
    assert settings.storage.remote
    assert settings.storage.location() == ("acme-enclave", "prod")
    assert settings.knowledge.uri == "s3://acme-enclave/prod/knowledge"
    options = settings.knowledge.storage_options()
    assert options["endpoint"] == "http://127.0.0.1:9000" and options["allow_http"] == "true"
    with pytest.raises(ValueError, match="bucket"):
        _ = settings.state_dir


def test_the_knowledge_base_may_live_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_STORAGE_URI", "s3://acme-enclave/prod")
    monkeypatch.setenv("ENCLAVE_KNOWLEDGE_URI", "s3://acme-kb/docs")
    assert Settings().knowledge.uri == "s3://acme-kb/docs"


def test_a_bucket_uri_names_a_bucket() -> None:
    with pytest.raises(ValidationError, match="names a bucket"):
        Settings(storage={"uri": "s3:///prefix"})


def test_many_containers_need_a_bucket_and_redis() -> None:
    with pytest.raises(ValidationError, match="ENCLAVE_STORAGE_URI"):
        Settings(gateway={"containers": 3})
    with pytest.raises(ValidationError, match="3 times the limit"):
        Settings(gateway={"containers": 3}, storage={"uri": "s3://b/p"})
    for backend in ("memory", "file"):
        with pytest.raises(ValidationError, match=repr(backend)):
            Settings(
                gateway={"containers": 2, "rate_limit": {"backend": backend}},
                storage={"uri": "s3://b/p"},
            )
    shared = Settings(
        gateway={"containers": 3, "rate_limit": {"backend": "redis"}}, storage={"uri": "s3://b/p"}
    )
    assert shared.gateway.containers == 3


def test_many_containers_may_not_share_one_audit_chain() -> None:
    with pytest.raises(ValidationError, match="ENCLAVE_AUDIT_INSTANCE_ID"):
        Settings(
            gateway={"containers": 2, "rate_limit": {"backend": "redis"}},
            storage={"uri": "s3://b/p"},
            audit={"instance_id": "gw-1"},
        )
