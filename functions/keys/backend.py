"""Where the key records live: the narrow interface the two backends share.

A backend stores one list of :class:`~functions.keys.records.KeyRecord` and a
*version* naming what was read: an ETag in a bucket, the file's identity
(inode, mtime, size) on a local disk. Reading with the version already held
costs nearly nothing when nothing changed; writing is read-modify-write, atomic
against every other writer (``flock`` locally, ``If-Match`` in a bucket).
Calls block: the store runs them in worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from functions.keys.records import KeyRecord
from functions.storage.objects import UNCHANGED, Unchanged

T = TypeVar("T")
Change = Callable[[list[KeyRecord]], T]

__all__ = ["UNCHANGED", "Change", "KeyBackend", "Seen", "Snapshot", "Unchanged"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The records as stored at ``version`` (None: nothing stored yet)."""

    records: tuple[KeyRecord, ...]
    version: str | None


EMPTY = Snapshot((), None)
Seen = Callable[[Snapshot], None]  # told each latest version an update reads on its way


class KeyBackend(Protocol):
    kind: Literal["local", "s3"]

    def load(self, version: str | None) -> Snapshot | Unchanged:
        """The stored records, or :data:`UNCHANGED` while they are still at ``version``.

        Raises :class:`~functions.errors.StorageUnavailableError` when they cannot be read.
        """
        ...

    def update(
        self, change: Change[T], current: Snapshot, seen: Seen | None = None
    ) -> tuple[T, Snapshot]:
        """Apply ``change`` to the latest records (in place) and store them, atomically.

        ``current`` is what the caller holds, reused when it is still the latest.
        ``change`` may run more than once (on fresh records each time) and may
        raise to refuse: nothing is written then, and the exception propagates.
        ``seen`` is called with each latest version read on the way, so a caller
        whose write waits behind other writers' still learns what they stored.
        """
        ...
