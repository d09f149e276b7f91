"""The audit section of the settings, the keys it names, and a key generator for local runs.

Keys are given as text so that they fit in environment variables and ``.env``:

* ``hmac_key``: any secret of at least 32 characters (its UTF-8 bytes key the chain);
* ``signing_key``: an Ed25519 private key as PEM or as the base64 of its 32-byte seed,
  or ``signing_key_path``: a file holding the PEM (mode 0600, on operator storage);
* ``public_key`` / ``public_key_path``: what ``verify`` needs; derived from the
  signing key when only that is given;
* ``kek``: key-encryption keys, ``kek_id -> base64 of 32 bytes``; ``active_kek`` wraps
  new data keys, the others only unwrap (until ``rotate-key`` re-wraps them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from functions.audit.errors import AuditConfigError

KEK_BYTES = 32  # AES-256
MIN_HMAC_CHARS = 32


class AuditSettings(BaseModel):
    """``settings.audit``: where records go, the keys that seal them, and how long they stay."""

    enabled: bool = True
    directory: Path = Path(".enclave/audit")
    # signed chain heads; default: ``audit-heads`` beside ``directory``
    heads_directory: Path | None = None
    hmac_key: SecretStr | None = None
    signing_key: SecretStr | None = None
    signing_key_path: Path | None = None
    public_key: str | None = None
    public_key_path: Path | None = None
    # one chain per writer; default: host, process id and a random suffix
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    retention_days: int = Field(default=180, ge=1)
    capture_content: bool = False
    kek: dict[str, SecretStr] = Field(default_factory=dict)
    active_kek: str | None = None
    queue_size: int = Field(default=10_000, ge=1)
    # places for unauthenticated refusals, apart from queue_size: past them they are
    # summed into one "refusals" record rather than crowding out real records
    anonymous_queue_size: int = Field(default=1_000, ge=1)
    batch_size: int = Field(default=512, ge=1, description="records per write + fsync")
    fail_closed: bool = False

    @field_validator("kek")
    @classmethod
    def _keks_are_256_bit(cls, kek: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for kek_id, key in kek.items():
            decode_key(key.get_secret_value(), f"kek[{kek_id}]")
        return kek

    @model_validator(mode="after")
    def _consistent(self) -> AuditSettings:
        if self.active_kek is not None and self.active_kek not in self.kek:
            raise ValueError(f"active_kek {self.active_kek!r} is not in kek")
        if self.capture_content and self.active_kek is None:
            raise ValueError("capture_content needs an active_kek to encrypt with")
        key = self.hmac_key
        if key is not None and len(key.get_secret_value()) < MIN_HMAC_CHARS:
            raise ValueError(f"hmac_key must have at least {MIN_HMAC_CHARS} characters")
        return self

    @property
    def heads_dir(self) -> Path:
        return self.heads_directory or self.directory.parent / "audit-heads"


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The key material, decoded. ``signing`` is None where only verification is possible."""

    hmac: bytes
    public: Ed25519PublicKey
    signing: Ed25519PrivateKey | None
    keks: dict[str, bytes]
    active_kek: str | None


def decode_key(text: str, name: str) -> bytes:
    """A 32-byte key from standard or URL-safe base64."""
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not base64") from exc
    if len(raw) != KEK_BYTES:
        raise ValueError(f"{name} must decode to {KEK_BYTES} bytes, not {len(raw)}")
    return raw


def _private_key(text: str) -> Ed25519PrivateKey:
    if text.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditConfigError("the audit signing key is not an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(decode_key(text, "signing_key"))


def _public_key(text: str) -> Ed25519PublicKey:
    if text.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise AuditConfigError("the audit public key is not an Ed25519 key")
        return key
    return Ed25519PublicKey.from_public_bytes(decode_key(text, "public_key"))


def load_keys(settings: AuditSettings, *, signing: bool = True) -> AuditKeys:
    """Decode the keys ``settings`` names; ``signing=False`` when only verifying.

    Raises :class:`AuditConfigError` when a key needed is missing or unreadable.
    """
    if settings.hmac_key is None:
        raise AuditConfigError("audit.hmac_key is not set")
    private: Ed25519PrivateKey | None = None
    if settings.signing_key is not None:
        private = _private_key(settings.signing_key.get_secret_value())
    elif settings.signing_key_path is not None:
        private = _private_key(settings.signing_key_path.read_text())
    if signing and private is None:
        raise AuditConfigError("audit.signing_key or audit.signing_key_path is not set")
    if settings.public_key is not None:
        public = _public_key(settings.public_key)
    elif settings.public_key_path is not None:
        public = _public_key(settings.public_key_path.read_text())
    elif private is not None:
        public = private.public_key()
    else:
        raise AuditConfigError("audit.public_key or audit.public_key_path is not set")
    keks = {k: decode_key(v.get_secret_value(), k) for k, v in settings.kek.items()}
    return AuditKeys(
        hmac=settings.hmac_key.get_secret_value().encode(),
        public=public,
        signing=private,
        keks=keks,
        active_kek=settings.active_kek,
    )


def new_kek() -> tuple[str, str]:
    """A fresh ``(kek_id, base64 key)``; the id carries the creation date."""
    kek_id = f"kek-{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(2)}"
    return kek_id, base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode()


def generate_keys(directory: Path) -> dict[str, Any]:
    """Make every audit key for a local run; returns the ``AuditSettings`` fields to set.

    The Ed25519 pair is written to ``directory`` (private key mode 0600); the HMAC key
    and a first KEK are returned inline, for ``.env``. Nothing existing is overwritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "audit-signing.pem"
    public_path = directory / "audit-public.pem"
    if private_path.exists():
        raise AuditConfigError(f"{private_path} exists; not overwriting an audit key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    kek_id, kek = new_kek()
    return {
        "hmac_key": secrets.token_urlsafe(48),
        "signing_key_path": str(private_path),
        "public_key_path": str(public_path),
        "kek": {kek_id: kek},
        "active_kek": kek_id,
    }
