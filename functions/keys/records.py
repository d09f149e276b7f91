"""What a key is: its stored record, what an operator asks for, and how long it lives.

A key is shown once, when it is created or rotated; the store keeps its HMAC
(``digest``), a short display prefix and its policy (tenant, role, models,
collections, limits, expiry, and whether it is a frontend that may name its end
users, with their own limits). Without the pepper a stolen key index is useless.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

import orjson
from pydantic import BaseModel, Field, StrictBool, TypeAdapter, field_validator

from functions.errors import InvalidRequestError

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

    def ended(self, now: datetime) -> datetime | None:
        """When the key stopped being usable (revoked or expired), or None if it still is."""
        ends = [t for t in (self.revoked_at, self.expires_at) if t is not None and t <= now]
        return min(ends) if ends else None


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


_RECORD = TypeAdapter(KeyRecord)


def dump_records(records: list[KeyRecord]) -> bytes:
    """The stored form: a JSON list, one record a line.

    Record by record, not in one call: a single pydantic call over 2,000 records
    holds the GIL for tens of milliseconds, and the event loop, whose thread needs
    it, would stall for that long although the write runs in a worker thread.
    """
    return b"[\n" + b",\n".join(_RECORD.dump_json(r) for r in records) + b"\n]"


def load_records(data: bytes) -> list[KeyRecord]:
    """:func:`dump_records`' inverse (raises pydantic.ValidationError or a JSON error)."""
    items = orjson.loads(data)
    if not isinstance(items, list):
        raise TypeError("the stored keys are not a JSON list")
    return [_RECORD.validate_python(item) for item in items]


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


def pruned(records: list[KeyRecord], now: datetime, retention: timedelta) -> list[KeyRecord]:
    """``records`` without the keys that ended (revoked, expired) more than ``retention`` ago.

    Their history stays in the audit log (every admin action is audited); the store
    keeps only what can still matter: live keys, and recently ended ones, so that a
    caller is told "revoked" rather than "unknown" for a while.
    """
    horizon = now - retention
    return [r for r in records if (ended := r.ended(now)) is None or ended > horizon]
