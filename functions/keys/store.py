"""The key store: an in-memory view for the request path, kept fresh off the event loop.

Lookups (:meth:`KeyStore.find`, :meth:`KeyStore.lookup`) hash the key with the
pepper and read a dict: O(1), no I/O, safe on the event loop. Everything that
touches storage — :meth:`~KeyStore.refresh`, :meth:`~KeyStore.records` and the
writes (create, revoke, rotate) — blocks, and runs in worker threads: the
gateway's admin routes call them through ``asyncio.to_thread`` and its lifespan
runs :class:`~functions.keys.revalidation.Revalidation`, which refreshes the
view every ``reload_s``. A write installs its own result at once, so the
process that made a change sees it immediately; **every other process sees it
within ``reload_s``** (default 1 s), revocations included.

Storage outages fail closed. A refresh that fails keeps the last good view (a
WARNING each time, the count and age in ``/health``), but a revocation made
meanwhile cannot be seen, so once the view is older than ``stale_after_s``
(10 × ``reload_s``, at least 5 s) while revalidation runs, every store key is
refused with 503 ``storage_unavailable`` until a refresh succeeds again. The
bootstrap keys of settings, checked before the store, keep working, so an
operator can still reach ``/health``. A store without revalidation running
(the CLI, a script) reads through on every write and listing instead.

Each write also drops the keys that ended (revoked or expired) more than
``retention`` ago (:func:`~functions.keys.records.pruned`): the store stays
proportional to the live keys; their history stays in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from functions.errors import KeyRevokedError, RouteNotFoundError, StorageUnavailableError
from functions.keys.backend import EMPTY, UNCHANGED, Change, KeyBackend, Snapshot, T
from functions.keys.records import KEY_PREFIX, KeyRecord, KeySpec, expiry, pruned
from functions.keys.revalidation import Revalidation

DEFAULT_RETENTION = timedelta(days=30)
STALE_AFTER_RELOADS = 10
MIN_STALE_AFTER_S = 5.0  # a slow request or two is an outage of no one
Check = Callable[[KeyRecord], None]  # sees a record before it is written; refuses by raising
Visible = Callable[[KeyRecord], bool]  # whether the caller may see (and so change) a record


@dataclass(frozen=True, slots=True)
class _View:
    snapshot: Snapshot
    by_digest: dict[str, KeyRecord] = field(default_factory=dict)
    by_id: dict[str, KeyRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot) -> _View:
        records = snapshot.records
        return cls(snapshot, {r.digest: r for r in records}, {r.id: r for r in records})


class KeyStore:
    """Keys stored as HMACs in a :class:`~functions.keys.backend.KeyBackend`; see the module."""

    def __init__(
        self,
        backend: KeyBackend,
        pepper: bytes,
        *,
        reload_s: float = 1.0,
        retention: timedelta = DEFAULT_RETENTION,
        stale_after_s: float | None = None,
    ) -> None:
        if len(pepper) < 16:
            raise ValueError("the key pepper must be at least 16 bytes")
        self._backend = backend
        self._pepper = pepper
        self._mac = hmac.new(pepper, digestmod=hashlib.sha256)  # keyed once, copied per key
        self.reload_s = reload_s
        self._retention = retention
        default_stale_s = max(STALE_AFTER_RELOADS * reload_s, MIN_STALE_AFTER_S)
        self._stale_after_s = stale_after_s or default_stale_s
        self._view = _View.of(EMPTY)  # replaced whole, never changed: readers need no lock
        self._loaded_at: float | None = None  # monotonic time of the last good read or write
        self._io = threading.Lock()  # one read or write at a time: views install in order
        self._revalidation: Revalidation | None = None  # while it runs, the view's age matters
        self.failures = 0  # refreshes that failed in a row

    @property
    def pepper(self) -> bytes:
        """The server-side secret; also keys end users' pseudonyms (functions/endusers.py)."""
        return self._pepper

    def digest(self, key: bytes) -> str:
        """HMAC-SHA256(pepper, key), hex."""
        mac = self._mac.copy()
        mac.update(key)
        return mac.hexdigest()

    # -- reading (request path: memory only) ----------------------------------------

    def find(self, key: bytes) -> KeyRecord | None:
        """The record for ``key``, usable or not (revoked, expired), or None.

        Raises StorageUnavailableError (503) while revalidation runs and the view is stale.
        """
        if self._revalidation is not None and not self.fresh:
            raise StorageUnavailableError(
                "The key store cannot be read; stored keys are refused until it can."
            )
        digest = self.digest(key)
        record = self._view.by_digest.get(digest)
        return record if record is not None and hmac.compare_digest(record.digest, digest) else None

    async def resolve(self, key: bytes) -> KeyRecord | None:
        """:meth:`find`; a key the view does not know waits for a fresher view first.

        While revalidation runs, a key just created elsewhere (another gateway,
        the CLI) works at once rather than after up to ``reload_s``.
        """
        record = self.find(key)
        if record is None and self._revalidation is not None and self._revalidation.running:
            await self._revalidation.fresher()
            record = self.find(key)
        return record

    def lookup(self, key: bytes) -> KeyRecord | None:
        """The usable record for ``key``, or None."""
        record = self.find(key)
        return record if record is not None and record.usable(datetime.now(UTC)) else None

    def known(self, key_id: str) -> KeyRecord | None:
        """The record with ``key_id`` in the current view, or None."""
        return self._view.by_id.get(key_id)

    @property
    def fresh(self) -> bool:
        loaded = self._loaded_at
        return loaded is not None and time.monotonic() - loaded <= self._stale_after_s

    def health(self) -> dict[str, Any]:
        """For ``/health``: where the keys live, how many, and how fresh the view is."""
        loaded = self._loaded_at
        return {
            "backend": self._backend.kind,
            "keys": len(self._view.by_id),
            "fresh": self.fresh,
            "age_s": round(time.monotonic() - loaded, 3) if loaded is not None else None,
            "failures": self.failures,
        }

    # -- revalidation (the gateway's lifespan) ----------------------------------------

    async def start(self) -> None:
        """Load the view and keep it fresh every ``reload_s`` (functions/keys/revalidation.py)."""
        if self._revalidation is None:
            self._revalidation = Revalidation(self.refresh, self.reload_s)
            await self._revalidation.start()

    async def aclose(self) -> None:
        if self._revalidation is not None:
            await self._revalidation.aclose()
            self._revalidation = None

    # -- storage (blocking: worker threads) ------------------------------------------

    def refresh(self) -> bool:
        """Revalidate the view (one conditional read); False, logged, if storage failed."""
        try:
            self._reload()
        except StorageUnavailableError as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 60 == 0:
                logger.warning(
                    "key store refresh failed; serving the last good view",
                    error=exc.message,
                    failures=self.failures,
                    fresh=self.fresh,
                )
            return False
        if self.failures:
            logger.info("key store refresh recovered", failures=self.failures)
            self.failures = 0
        return True

    def records(self) -> list[KeyRecord]:
        """Every stored record, read through (raises StorageUnavailableError)."""
        self._reload()
        return list(self._view.snapshot.records)

    def _reload(self) -> None:
        with self._io:
            loaded = self._backend.load(self._view.snapshot.version)
            self._install(self._view.snapshot if loaded is UNCHANGED else loaded)

    def _install(self, snapshot: Snapshot) -> None:
        """The view is ``snapshot``, just read or written (under ``_io``: in order)."""
        if snapshot is not self._view.snapshot:
            self._view = _View.of(snapshot)
        self._loaded_at = time.monotonic()

    def update(self, change: Change[T]) -> T:
        """Apply ``change`` to the stored records in one atomic write; prune ended keys."""

        def changed(records: list[KeyRecord]) -> T:
            result = change(records)
            records[:] = pruned(records, datetime.now(UTC), self._retention)
            return result

        with self._io:  # held while the write waits behind others': it installs what it reads
            result, snapshot = self._backend.update(changed, self._view.snapshot, self._install)
            self._install(snapshot)  # this process sees its change at once
        return result

    # -- operations (CLI, admin endpoints) -------------------------------------------

    def _new_key(self) -> tuple[str, str]:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return key, self.digest(key.encode())

    def create(self, spec: KeySpec, check: Check | None = None) -> tuple[str, KeyRecord]:
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
        self.update(lambda records: records.append(record))
        return key, record

    def revoke(self, key_id: str, visible: Visible | None = None) -> KeyRecord:
        """Revoke ``key_id`` (once: a second revocation changes nothing).

        ``visible`` decides whether the caller may see the record; one it may
        not is answered as missing (404), exactly like an unknown id.
        """

        def revoke(records: list[KeyRecord]) -> KeyRecord:
            index = _index(records, key_id, visible)
            if records[index].revoked_at is None:
                records[index] = records[index].model_copy(update={"revoked_at": datetime.now(UTC)})
            return records[index]

        return self.update(revoke)

    def rotate(
        self, key_id: str, check: Check | None = None, visible: Visible | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key with the same policy; the old one is revoked in the same write.

        A revoked key is not rotated (409): revocation is final. ``check`` sees the
        record as stored at the write and may refuse by raising; ``visible`` as in
        :meth:`revoke`.
        """
        key, digest = self._new_key()
        new_id = "key_" + secrets.token_hex(6)

        def rotate(records: list[KeyRecord]) -> KeyRecord:
            index = _index(records, key_id, visible)
            old = records[index]
            if old.revoked_at is not None:
                raise KeyRevokedError(f"Key {key_id!r} is revoked; create a new key instead.")
            if check is not None:
                check(old)
            now = datetime.now(UTC)
            records[index] = old.model_copy(update={"revoked_at": now})
            new = old.model_copy(
                update={
                    "id": new_id,
                    "created_at": now,
                    "revoked_at": None,
                    "digest": digest,
                    "display": key[: len(KEY_PREFIX) + 4],
                }
            )
            records.append(new)
            return new

        return key, self.update(rotate)


def _index(records: list[KeyRecord], key_id: str, visible: Visible | None) -> int:
    for index, record in enumerate(records):
        if record.id == key_id and (visible is None or visible(record)):
            return index
    raise RouteNotFoundError(f"No key with id {key_id!r}.")
