"""The storage seam of the audit log, the file layout, durable writes, and signed documents.

Records live in a local directory (:mod:`functions.audit.files`) or a bucket
(:mod:`functions.audit.bucket`); the chain writer, ``verify`` and ``prune`` see
either through :class:`AuditStorage`. A directory holds::

    <directory>/YYYY-MM-DD/<chain>.jsonl        records, one JSON line each, append-only
    <directory>/YYYY-MM-DD/<chain>.keys.jsonl   wrapped data keys (content capture only)
    <heads>/<chain>.head.json                   signed chain head, rewritten per batch
    <heads>/<chain>.pruned.json                 signed "pruned up to" checkpoint
    <heads>/<chain>.lock                        held by the live writer of <chain>

A signed document is ``{"doc": {...}, "sig": base64(Ed25519(canonical(doc)))}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from loguru import logger

from functions.audit.records import canonical

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LOG = ".jsonl"
KEYS = ".keys.jsonl"
HEAD = ".head.json"
PRUNED = ".pruned.json"
_TAIL_BLOCK = 65_536  # bytes read at a time from the end of a log


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of one chain's records: a day file (directory) or one commit's object (bucket)."""

    chain: str
    day: str
    name: str  # where it is, relative to the audit root: what findings name


@dataclass(frozen=True, slots=True)
class DayBatch:
    """The part of one commit that falls on one UTC day, encoded."""

    day: str
    first_seq: int
    records: bytes  # JSON lines
    keys: bytes  # wrapped data keys, JSON lines; empty without content capture


@dataclass(frozen=True, slots=True)
class Tail:
    """What a writer resumes from: the head as stored, and the chain's last record."""

    head: bytes | None
    day: str | None  # the day of the last segment; None: the chain has no records
    last: dict[str, Any] | None  # its last complete record, if readable


class ChainSink(Protocol):
    """Where one writer puts its commits; used from the writer's thread only.

    ``commit`` makes the records durable (all or nothing) and returns the name of the
    segment holding the last one; ``write_head`` then replaces the signed head.
    """

    def resume(self) -> Tail: ...
    def commit(self, batches: Sequence[DayBatch]) -> str: ...
    def write_head(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class AuditStorage(Protocol):
    """Every chain's records and signed documents, for the writer, ``verify`` and ``prune``.

    ``unit`` names a segment in findings ("day file", "object").
    """

    unit: str

    def sink(self, chain: str) -> ChainSink:
        """The one live writer's way in to ``chain``; refuses a second live writer."""
        ...

    def segments(self) -> dict[str, list[Segment]]:
        """Every chain's segments, oldest first."""
        ...

    def lines(self, segment: Segment) -> Iterable[bytes]:
        """The segment's lines, each with its ``\n`` (a torn last line without)."""
        ...

    def last_record(self, segment: Segment) -> dict[str, Any] | None: ...

    def keyring(self, segment: Segment) -> bytes:
        """The segment's wrapped data keys, JSON lines (empty without content capture)."""
        ...

    def documents(self, suffix: str) -> dict[str, bytes | None]:
        """Chain -> content of each head (``HEAD``) or checkpoint (``PRUNED``)."""
        ...

    def put_document(self, chain: str, suffix: str, data: bytes) -> None: ...

    def drop_days(self, days: Sequence[str]) -> None:
        """Delete every chain's records (and wrapped keys) of ``days``."""
        ...

    def keyrings(self) -> list[str]:
        """The wrapped-key sidecars, by name."""
        ...

    def rewrite_keyring(self, name: str, change: Callable[[bytes], bytes | None]) -> None:
        """Replace a sidecar by ``change(content)`` (None: leave it), safe from lost updates."""
        ...


def log_path(directory: Path, day: str, chain: str) -> Path:
    return directory / day / f"{chain}{LOG}"


def keys_path(log: Path) -> Path:
    """The wrapped-key sidecar of a log file."""
    return log.with_name(log.name.removesuffix(LOG) + KEYS)


def head_path(heads: Path, chain: str) -> Path:
    return heads / f"{chain}{HEAD}"


def checkpoint_path(heads: Path, chain: str) -> Path:
    return heads / f"{chain}{PRUNED}"


def relative(directory: Path, path: Path) -> str:
    return path.relative_to(directory).as_posix()


def list_logs(directory: Path) -> dict[str, list[tuple[str, Path]]]:
    """Every chain's log files as ``(day, path)``, oldest day first."""
    chains: dict[str, list[tuple[str, Path]]] = {}
    if not directory.is_dir():
        return chains
    for day_dir in sorted(p for p in directory.iterdir() if DAY.match(p.name) and p.is_dir()):
        for path in sorted(day_dir.glob(f"*{LOG}")):
            if not path.name.endswith(KEYS):
                chains.setdefault(path.name.removesuffix(LOG), []).append((day_dir.name, path))
    return chains


def list_documents(heads: Path, suffix: str) -> dict[str, Path]:
    """Chain name -> path of each head (``HEAD``) or checkpoint (``PRUNED``) in ``heads``."""
    if not heads.is_dir():
        return {}
    return {p.name.removesuffix(suffix): p for p in sorted(heads.glob(f"*{suffix}"))}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` by ``data``: a reader sees the old file or the new, never a mix.

    ``sync_dir=False`` skips the directory's fsync: after a crash the rename may be
    undone and the old file come back, which is fine for a head (it then lags).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


@contextlib.contextmanager
def locked(path: Path, mode: str) -> Iterator[IO[bytes]]:
    """``path`` opened and exclusively flock-ed, reopened if it was replaced meanwhile.

    Used by the writer (append) and ``rotate-key`` (read then replace) on key sidecars.
    flock is advisory and per host: see the package docstring for shared volumes.
    """
    while True:
        handle = path.open(mode)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        yield handle
    finally:
        handle.close()  # releases the lock


def append_durably(path: Path, data: bytes) -> None:
    with locked(path, "ab") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def sign(key: Ed25519PrivateKey, doc: dict[str, Any]) -> bytes:
    signature = base64.b64encode(key.sign(canonical(doc))).decode()
    return orjson.dumps({"doc": doc, "sig": signature}, option=orjson.OPT_INDENT_2)


def read_signed(path: Path, key: Ed25519PublicKey) -> tuple[dict[str, Any] | None, bool]:
    """``(doc, signature valid)``; ``(None, False)`` when the file is unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        return None, False
    return parse_signed(data, key)


def parse_signed(data: bytes | None, key: Ed25519PublicKey) -> tuple[dict[str, Any] | None, bool]:
    """``(doc, signature valid)`` of a signed document; ``(None, False)`` when unreadable."""
    try:
        outer = orjson.loads(data or b"")
        doc, signature = outer["doc"], base64.b64decode(outer["sig"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
        return None, False
    if not isinstance(doc, dict):
        return None, False
    try:
        key.verify(signature, canonical(doc))
    except InvalidSignature:
        return doc, False
    return doc, True


def last_record(path: Path, *, repair: bool = False) -> dict[str, Any] | None:
    """The last complete line of ``path``, parsed; with ``repair`` a torn last line is cut off."""
    with path.open("r+b" if repair else "rb") as f:
        end = f.seek(0, os.SEEK_END)
        tail, start = b"", end
        while start > 0 and tail.count(b"\n") < 2:
            start = max(0, start - _TAIL_BLOCK)
            f.seek(start)
            tail = f.read(end - start)
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1
            if repair:
                logger.error("audit: cutting a torn last line off {}", path)
                f.truncate(start + cut)
            tail = tail[:cut]
    return last_line_record(tail)


def last_line_record(data: bytes) -> dict[str, Any] | None:
    """The last complete line of ``data`` (a whole object), parsed; None if there is none."""
    complete = data[: data.rfind(b"\n") + 1]
    lines = complete.splitlines()
    if not lines:
        return None
    try:
        record = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
