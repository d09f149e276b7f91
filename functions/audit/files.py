"""The audit log in a local directory: day files appended and fsynced, heads beside them.

The layout is in :mod:`functions.audit.store`. One live writer per chain holds
``<heads>/<chain>.lock`` (flock: per host, see the package docstring); a commit
appends each day's lines with one write and one fsync, fsyncs the directories of
files it created, and is cut back if any part of it fails; then the head overwrites
the older of its two slots in place, with one ``fdatasync``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from loguru import logger

from functions.audit.errors import AuditConfigError
from functions.audit.store import (
    HEAD,
    HEAD_SLOTS,
    PRUNED,
    DayBatch,
    Segment,
    Tail,
    append_durably,
    fsync_dir,
    head_path,
    keys_path,
    last_record,
    list_documents,
    list_logs,
    locked,
    log_path,
    relative,
    write_atomic,
)


class LocalStorage:
    """:class:`~functions.audit.store.AuditStorage` on ``directory`` and ``heads``."""

    unit = "day file"

    def __init__(self, directory: Path, heads: Path) -> None:
        self.directory, self.heads = directory, heads

    def sink(self, chain: str) -> FileSink:
        return FileSink(self.directory, self.heads, chain)

    def _path(self, segment: Segment) -> Path:
        return self.directory / segment.name

    def segments(self) -> dict[str, list[Segment]]:
        return {
            chain: [Segment(chain, day, relative(self.directory, path)) for day, path in logs]
            for chain, logs in list_logs(self.directory).items()
        }

    def lines(self, segment: Segment) -> Iterator[bytes]:
        with self._path(segment).open("rb") as f:
            yield from f

    def last_record(self, segment: Segment) -> dict[str, Any] | None:
        return last_record(self._path(segment))

    def keyring(self, segment: Segment) -> bytes:
        path = keys_path(self._path(segment))
        return path.read_bytes() if path.exists() else b""

    def documents(self, suffix: str) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for chain, path in list_documents(self.heads, suffix).items():
            found[chain] = _read(path)  # listed, unreadable (None): verify reports it
        return found

    def head_slots(self) -> dict[str, tuple[bytes | None, ...]]:
        slots = [list_documents(self.heads, suffix) for suffix in HEAD_SLOTS]
        return {
            chain: tuple(_read(found.get(chain)) for found in slots)
            for chain in sorted(set().union(*slots))
        }

    def put_document(self, chain: str, suffix: str, data: bytes) -> None:
        if suffix not in (HEAD, PRUNED):
            raise ValueError(f"not a signed document's suffix: {suffix!r}")
        self.heads.mkdir(parents=True, exist_ok=True)
        write_atomic(self.heads / f"{chain}{suffix}", data)

    def drop_days(self, days: Sequence[str]) -> None:
        for day in days:
            shutil.rmtree(self.directory / day)

    def keyrings(self) -> list[str]:
        return [
            relative(self.directory, keys_path(path))
            for logs in list_logs(self.directory).values()
            for _, path in logs
            if keys_path(path).exists()
        ]

    def rewrite_keyring(self, name: str, change: Callable[[bytes], bytes | None]) -> None:
        path = self.directory / name
        with locked(path, "rb") as handle:  # the writer appends under the same lock
            changed = change(handle.read())
            if changed is not None:
                write_atomic(path, changed)


class FileSink:
    """One chain's day files and head; holds the chain's lock while open."""

    def __init__(self, directory: Path, heads: Path, chain: str) -> None:
        self.directory, self.heads, self.chain = directory, heads, chain
        for made in (directory, heads):
            if not made.is_dir():
                made.mkdir(parents=True, exist_ok=True)
                fsync_dir(made.parent)
        self._lock = (heads / f"{chain}.lock").open("ab")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise AuditConfigError(f"audit chain {chain!r} is in use by another process") from exc
        self._file: IO[bytes] | None = None
        self._file_day = ""
        self._new_entries: set[Path] = set()  # directories to fsync: they gained a file
        self._slots: list[int] = []  # the head slots' file descriptors, once opened
        self._sizes: list[int] = []  # their sizes
        self._next = 0  # the slot the next head goes to

    def resume(self) -> Tail:
        heads = tuple(_read(head_path(self.heads, self.chain, slot)) for slot in (0, 1))
        # overwrite first the slot that is missing, unreadable or older (unverified: the
        # writer checks signatures; a forged newer-looking slot is overwritten second)
        self._next = min((0, 1), key=lambda slot: _seq_of(heads[slot]))
        logs = list_logs(self.directory).get(self.chain, [])
        if not logs:
            return Tail(heads, None, None)
        day, last_log = logs[-1]
        return Tail(heads, day, last_record(last_log, repair=True))

    def _open(self, day: str) -> IO[bytes]:
        if self._file is None or self._file_day != day:
            if self._file is not None:
                self._file.close()
            path = log_path(self.directory, day, self.chain)
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._new_entries.add(self.directory)
            if not path.exists():
                self._new_entries.add(path.parent)
            self._file, self._file_day = path.open("ab"), day
        return self._file

    def commit(self, batches: Sequence[DayBatch]) -> str:
        written: list[tuple[IO[bytes], int]] = []
        try:
            for batch in batches:
                out = self._open(batch.day)
                written.append((out, out.tell()))
                out.write(batch.records)
                out.flush()
                os.fsync(out.fileno())
                if batch.keys:
                    sidecar = keys_path(log_path(self.directory, batch.day, self.chain))
                    if not sidecar.exists():
                        self._new_entries.add(sidecar.parent)
                    append_durably(sidecar, batch.keys)
            for entries in sorted(self._new_entries, key=lambda p: len(p.parts), reverse=True):
                fsync_dir(entries)  # a new file's name survives a crash with its data
            self._new_entries.clear()
        except BaseException:
            _cut_back(written)
            raise
        return relative(self.directory, log_path(self.directory, batches[-1].day, self.chain))

    def write_head(self, doc: dict[str, Any], sign: Callable[[dict[str, Any]], bytes]) -> None:
        """Overwrite the older slot with ``doc``, signed. The first time, write the slots
        that were missing first (and their names to disk), then the rest: both exist
        from then on, and one of them is whole at every moment."""
        order = [self._next]
        if not self._slots:
            created = self._open_slots()
            for slot in created:
                self._overwrite(slot, sign({**doc, "slot": slot}))
            if created:
                fsync_dir(self.heads)
                order = [slot for slot in (0, 1) if slot not in created]
        for slot in order:
            self._overwrite(slot, sign({**doc, "slot": slot}))
        self._next = 1 - order[-1] if order else 0  # both just made: either is older

    def _open_slots(self) -> list[int]:
        """Open both slots, creating what is missing; the slots created (or empty)."""
        created = []
        for slot in (0, 1):
            path = head_path(self.heads, self.chain, slot)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            self._slots.append(fd)
            self._sizes.append(os.fstat(fd).st_size)
            if not self._sizes[-1]:
                created.append(slot)
        return created

    def _overwrite(self, slot: int, data: bytes) -> None:
        """``data`` over the slot in place, padded with JSON whitespace over what was
        longer, and on disk."""
        fd, size = self._slots[slot], self._sizes[slot]
        os.pwrite(fd, data.ljust(size), 0)
        os.fdatasync(fd)
        self._sizes[slot] = max(size, len(data))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        for fd in self._slots:
            os.close(fd)
        self._slots.clear()
        self._lock.close()


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes() or None  # an empty slot: created, never written
    except OSError:
        return None


def _seq_of(head: bytes | None) -> int:
    """The ``seq`` a head claims, unverified; -1 for a slot missing or unreadable."""
    try:
        return int(orjson.loads(head or b"")["doc"]["seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return -1


def _cut_back(written: list[tuple[IO[bytes], int]]) -> None:
    for out, position in written:
        try:
            out.truncate(position)
            out.seek(position)
        except OSError:
            logger.exception("audit: could not cut back a partly written batch")
