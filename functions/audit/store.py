"""The storage seam of the audit log, the file layout, durable writes, and signed documents.

Records live in a local directory (:mod:`functions.audit.files`) or a bucket
(:mod:`functions.audit.bucket`); the chain writer, ``verify`` and ``prune`` see
either through :class:`AuditStorage`. A directory holds::

    <directory>/YYYY-MM-DD/<chain>.jsonl        records, one JSON line each, append-only
    <directory>/YYYY-MM-DD/<chain>.keys.jsonl   wrapped data keys (content capture only)
    <heads>/<chain>.head.json                   signed chain head, slot 0 of 2
    <heads>/<chain>.head.1.json                 signed chain head, slot 1 of 2
    <heads>/<chain>.pruned.json                 signed "pruned up to" checkpoint
    <heads>/<chain>.lock                        held by the live writer of <chain>

A signed document is ``{"doc": {...}, "sig": base64(Ed25519(canonical(doc)))}``.

Each commit rewrites the head, so that a record cut off the end shows, and must have it
on disk before it returns. Replacing a file durably (a temporary file, its fsync, a
rename, the directory's fsync) cost 0.4 ms p50 and up to 5 ms p99 on the development
machine, two thirds of a commit; overwriting a file in place and ``fdatasync`` costs
0.07 ms, but a crash in the middle of it may leave neither head. So a directory keeps
two head slots and overwrites them in turn: the one not being written always holds the
previous head, whole. Each slot's document names its slot (``"slot": 0`` or ``1``,
signed), so a copy of one over the other shows, and a writer that writes slots writes
both the first time, so a missing one shows too. The head is the slot whose signature
holds with the higher ``seq`` (:func:`newest_head`). A head from before slots (no
``slot`` field, slot 0 only) still reads. A bucket keeps one head object, replaced by a
conditional write.
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
HEAD_SLOTS = (HEAD, ".head.1.json")  # a directory's two head slots, by slot number
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

    heads: tuple[bytes | None, ...]  # the head's slots as stored (one in a bucket)
    day: str | None  # the day of the last segment; None: the chain has no records
    last: dict[str, Any] | None  # its last complete record, if readable


class ChainSink(Protocol):
    """Where one writer puts its commits; used from the writer's thread only.

    ``commit`` makes the records durable (all or nothing) and returns the name of the
    segment holding the last one; ``write_head`` then replaces the signed head, signing
    ``doc`` with ``sign`` (after adding the slot it goes to, where there are slots).
    """

    def resume(self) -> Tail: ...
    def commit(self, batches: Sequence[DayBatch]) -> str: ...
    def write_head(self, doc: dict[str, Any], sign: Callable[[dict[str, Any]], bytes]) -> None: ...
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

    def head_slots(self) -> dict[str, tuple[bytes | None, ...]]:
        """Chain -> its head's slots as stored (a missing one None; one in a bucket)."""
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


def head_path(heads: Path, chain: str, slot: int = 0) -> Path:
    return heads / f"{chain}{HEAD_SLOTS[slot]}"


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


# what is wrong with a head slot: ("forged_head" | "missing_head", detail)
Fault = tuple[str, str]


def newest_head(
    slots: tuple[bytes | None, ...], key: Ed25519PublicKey, chain: str
) -> tuple[dict[str, Any] | None, list[Fault]]:
    """The newest sound head among ``slots`` (None if none is), and what is wrong with
    the others: a bad signature, another chain's head, another slot's head copied over
    this one, or a slot missing beside one written by a writer of slots."""
    sound: list[dict[str, Any]] = []
    faults: list[Fault] = []
    for i, data in enumerate(slots):
        where = f"head slot {i}" if len(slots) > 1 else "the head"
        if data is None:
            continue
        doc, valid = parse_signed(data, key)
        if not valid or doc is None:
            faults.append(("forged_head", f"{where}: its signature does not verify; ignored"))
        elif doc.get("chain") != chain:  # another chain's signed head, copied over this one's
            faults.append(("forged_head", f"{where} names chain {str(doc.get('chain'))[:100]!r}"))
        elif len(slots) > 1 and doc.get("slot", 0) != i:
            faults.append(("forged_head", f"{where} holds slot {str(doc.get('slot'))[:8]}'s head"))
        else:
            sound.append(doc)
    if len(slots) > 1 and any("slot" in doc for doc in sound):
        faults += [
            ("missing_head", f"head slot {i} is missing")
            for i, data in enumerate(slots)
            if data is None
        ]
    return max(sound, key=lambda doc: int(doc["seq"]), default=None), faults


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
