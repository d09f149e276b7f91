"""API keys on operator-owned storage, stored only as HMAC-SHA256 under a server-side pepper.

A key is shown once, when it is created or rotated; the store keeps its HMAC
(``digest``), a short display prefix and its policy (tenant, role, models,
collections, limits, expiry, and whether it is a frontend that may name its end
users, with their own limits). Without the pepper a stolen key file is useless.

Storage is one JSON file, ``keys.json``, in a directory on operator storage (the
data directory locally, a Volume on Modal). Writers take an exclusive ``flock``
and replace the file atomically, so the CLI, the admin endpoints and several
gateway processes can share it. Readers keep a cached copy and look at the
file's mtime at most every ``reload_s`` seconds: **a revoked key stops working
in every gateway process within ``reload_s`` seconds** (default 1 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, TypeAdapter, field_validator

from functions.errors import InvalidRequestError, RouteNotFoundError
from functions.errors import KeyRevokedError as KeyRevokedError
from functions.settings import Settings

Role = Literal["admin", "member", "auditor"]
KEY_PREFIX = "sk-enc-"


class KeyRecord(BaseModel):
    id: str
    name: str | None = None
    tenant: str
    role: Role
    models: list[str] | None = None  # None: every model the role may use
    collections: list[str] | None = None  # None: every collection of the tenant
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    daily_tokens: int | None = Field(default=None, ge=1)
    # a frontend key: it may name its end users (functions/endusers.py), each limited
    # by the user_* limits (None: the settings' per-user defaults)
    trust_user_headers: bool = False
    user_rpm: int | None = Field(default=None, ge=1)
    user_tpm: int | None = Field(default=None, ge=1)
    user_daily_tokens: int | None = Field(default=None, ge=1)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    display: str  # the first characters of the key, to recognise it in listings
    digest: str  # HMAC-SHA256(pepper, key), hex

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class KeySpec(BaseModel):
    """What an operator asks for when creating a key (CLI flags, admin endpoint body)."""

    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Role = "member"
    name: str | None = Field(default=None, max_length=128)
    models: list[str] | None = None
    collections: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    daily_tokens: int | None = Field(default=None, ge=1)
    trust_user_headers: StrictBool = False  # JSON true or false: 0 or "yes" is a 400
    user_rpm: int | None = Field(default=None, ge=1)
    user_tpm: int | None = Field(default=None, ge=1)
    user_daily_tokens: int | None = Field(default=None, ge=1)
    expires: str | None = Field(default=None, description="e.g. 30d, 12h, 90m")

    @field_validator("expires")
    @classmethod
    def _a_lifetime_that_ends(cls, value: str | None) -> str | None:
        if value is not None:
            expiry(value, datetime.now(UTC))  # 400 now, not a 500 when the key is made
        return value


_RECORDS = TypeAdapter(list[KeyRecord])
_DURATION = re.compile(r"^([0-9]{1,9})([dhm])$")
MAX_LIFETIME = timedelta(days=100 * 366)  # a key outliving this is a typo, not a policy
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(text: str) -> timedelta:
    """A positive lifetime such as ``30d``, ``12h`` or ``90m``, at most a century."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise InvalidRequestError(
            f"Invalid duration {text[:32]!r}: use e.g. 30d, 12h or 90m.", param="expires"
        )
    duration = int(match[1]) * _UNITS[match[2]]
    if duration > MAX_LIFETIME:
        raise InvalidRequestError(
            f"Invalid duration {text[:32]!r}: a key lives at most {MAX_LIFETIME.days} days.",
            param="expires",
        )
    return duration


def expiry(text: str, now: datetime) -> datetime:
    """When a key made at ``now`` with lifetime ``text`` expires."""
    return now + parse_duration(text)


class KeyStore:
    def __init__(self, directory: Path, pepper: bytes, reload_s: float = 1.0) -> None:
        if len(pepper) < 16:
            raise ValueError("the key pepper must be at least 16 bytes")
        self._path = directory / "keys.json"
        self._lock_path = directory / "keys.lock"
        self._pepper = pepper
        self._reload_s = reload_s
        self._by_digest: dict[str, KeyRecord] = {}
        self._seen: tuple[float, int] | None = None
        self._checked = float("-inf")

    @property
    def pepper(self) -> bytes:
        """The server-side secret; also keys end users' pseudonyms (functions/endusers.py)."""
        return self._pepper

    def digest(self, key: bytes) -> str:
        return hmac.new(self._pepper, key, hashlib.sha256).hexdigest()

    # -- reading (request path) -------------------------------------------------

    def lookup(self, key: bytes) -> KeyRecord | None:
        """The usable record for ``key``, or None. Reloads at most every ``reload_s``."""
        record = self.find(key)
        return record if record is not None and record.usable(datetime.now(UTC)) else None

    def find(self, key: bytes) -> KeyRecord | None:
        """The record for ``key``, usable or not (revoked, expired), or None."""
        now = time.monotonic()
        if now - self._checked >= self._reload_s:
            self._checked = now
            self._refresh()
        record = self._by_digest.get(self.digest(key))
        if record is None or not hmac.compare_digest(record.digest, self.digest(key)):
            return None
        return record

    def _refresh(self) -> None:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._by_digest, self._seen = {}, None
            return
        seen = (stat.st_mtime, stat.st_size)
        if seen != self._seen:
            self._by_digest = {r.digest: r for r in self._read()}
            self._seen = seen

    def _read(self) -> list[KeyRecord]:
        try:
            return _RECORDS.validate_json(self._path.read_bytes())
        except FileNotFoundError:
            return []

    # -- writing (CLI, admin endpoints) -------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._read()
            yield records
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(_RECORDS.dump_json(records, indent=1))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
        self._checked = float("-inf")  # this process sees its own change at once

    def _new_key(self) -> tuple[str, str]:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return key, self.digest(key.encode())

    def create(
        self, spec: KeySpec, check: Callable[[KeyRecord], None] | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key for ``spec``; ``check`` sees its record first and may refuse by raising."""
        key, digest = self._new_key()
        now = datetime.now(UTC)
        record = KeyRecord(
            id="key_" + secrets.token_hex(6),
            created_at=now,
            expires_at=expiry(spec.expires, now) if spec.expires else None,
            display=key[: len(KEY_PREFIX) + 4],
            digest=digest,
            **spec.model_dump(exclude={"expires"}),
        )
        if check is not None:
            check(record)
        with self._locked() as records:
            records.append(record)
        return key, record

    def records(self) -> list[KeyRecord]:
        return self._read()

    def _find(self, records: list[KeyRecord], key_id: str) -> int:
        for index, record in enumerate(records):
            if record.id == key_id:
                return index
        raise RouteNotFoundError(f"No key with id {key_id!r}.")

    def revoke(self, key_id: str) -> KeyRecord:
        with self._locked() as records:
            index = self._find(records, key_id)
            if records[index].revoked_at is None:
                records[index] = records[index].model_copy(update={"revoked_at": datetime.now(UTC)})
            return records[index]

    def rotate(
        self, key_id: str, check: Callable[[KeyRecord], None] | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key with the same policy; the old one is revoked in the same write.

        A revoked key is not rotated (409): revocation is final. ``check`` sees the
        record as it is under the write lock and may refuse by raising.
        """
        key, digest = self._new_key()
        now = datetime.now(UTC)
        with self._locked() as records:
            index = self._find(records, key_id)
            old = records[index]
            if old.revoked_at is not None:
                raise KeyRevokedError(f"Key {key_id!r} is revoked; create a new key instead.")
            if check is not None:
                check(old)
            records[index] = old.model_copy(update={"revoked_at": now})
            new = old.model_copy(
                update={
                    "id": "key_" + secrets.token_hex(6),
                    "created_at": now,
                    "revoked_at": None,
                    "digest": digest,
                    "display": key[: len(KEY_PREFIX) + 4],
                }
            )
            records.append(new)
        return key, new


def load_pepper(directory: Path, configured: bytes | None) -> bytes:
    """The configured pepper, or one generated once into ``directory/key_pepper`` (mode 0600).

    Several hosts sharing one key store (Modal containers on a Volume) must be
    given the same pepper through settings rather than rely on the file.
    """
    if configured:
        return configured
    path = directory / "key_pepper"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def key_store(settings: Settings) -> KeyStore:
    """The key store the settings describe: under the data directory, with its pepper."""
    configured = settings.gateway.key_pepper
    pepper = load_pepper(
        settings.data_dir, configured.get_secret_value().encode() if configured else None
    )
    return KeyStore(settings.data_dir, pepper, reload_s=settings.gateway.key_reload_s)
