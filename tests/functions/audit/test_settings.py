"""``AuditSettings`` nested as the lead will nest it, keys from env, and their checks."""

from __future__ import annotations

import base64
import io
import secrets
from pathlib import Path

import pydantic
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.audit import (
    AuditConfigError,
    AuditSettings,
    env_lines,
    generate_keys,
    keygen_command,
    load_keys,
)


class Root(BaseSettings):
    """The shape of ``functions.settings.Settings`` with the audit section nested."""

    model_config = SettingsConfigDict(
        env_prefix="ENCLAVE_", env_nested_delimiter="_", env_nested_max_split=1
    )
    audit: AuditSettings = Field(default_factory=AuditSettings)


def kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_defaults() -> None:
    audit = Root().audit
    assert (audit.retention_days, audit.capture_content, audit.fail_closed) == (180, False, False)
    assert audit.queue_size == 10_000
    assert audit.heads_dir == Path(".enclave/audit-heads")


def test_generated_keys_load_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env_lines(generate_keys(tmp_path)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENCLAVE_AUDIT_CAPTURE_CONTENT", "true")
    monkeypatch.setenv("ENCLAVE_AUDIT_RETENTION_DAYS", "30")
    audit = Root().audit
    keys = load_keys(audit)
    assert audit.capture_content and audit.retention_days == 30
    assert keys.active_kek in keys.keks and len(keys.keks[keys.active_kek]) == 32
    assert oct((tmp_path / "audit-signing.pem").stat().st_mode & 0o777) == "0o600"


def test_raw_base64_signing_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    audit = AuditSettings.model_validate(
        {"hmac_key": "h" * 32, "signing_key": base64.b64encode(seed).decode()}
    )
    keys = load_keys(audit)
    assert keys.public.public_bytes_raw() == key.public_key().public_bytes_raw()


@pytest.mark.parametrize(
    "fields",
    [
        {"kek": {"k": base64.b64encode(b"short").decode()}},
        {"kek": {"k": "not base64!"}},
        {"kek": {"k": kek()}, "active_kek": "other"},
        {"capture_content": True},
        {"hmac_key": "too-short"},
        {"retention_days": 0},
        {"instance_id": "../escape"},
    ],
)
def test_bad_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        AuditSettings.model_validate(fields)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    out = io.StringIO()
    assert keygen_command(tmp_path, out) == 0
    assert "ENCLAVE_AUDIT_HMAC_KEY=" in out.getvalue()
    assert keygen_command(tmp_path, io.StringIO()) == 2
    with pytest.raises(AuditConfigError):
        generate_keys(tmp_path)
