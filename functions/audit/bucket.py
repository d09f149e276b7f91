"""The audit log in a bucket: one new object per commit, never overwritten, heads beside.

Under the storage's ``audit/`` prefix::

    logs/<chain>/YYYY-MM-DD/<seq>.jsonl        one commit's records of that day; <seq>,
                                               12 digits, is its first record's
    logs/<chain>/YYYY-MM-DD/<seq>.keys.jsonl   their wrapped data keys (content capture)
    heads/<chain>.head.json                    signed chain head, replaced per commit
    heads/<chain>.pruned.json                  signed "pruned up to" checkpoint

Decision: objects are created, never appended to (S3 has no append) and never
replaced. Each is written with ``If-None-Match: *``, so two live writers that
claim one chain cannot overwrite each other's records: the second one's write is
refused and it fails loudly (:class:`AuditConflictError`); the head is replaced
only with ``If-Match`` on the ETag this writer last wrote, for the same reason.
A record is durable once its object and the head after it are written, as on a
disk. The records are sealed and chained exactly as in a directory, so ``verify``
and ``prune`` are shared; a deleted object shows as a gap, a deleted last object
as truncation against the head, a deleted head as ``missing_head`` and a head
without any object as ``missing_chain``. What a bucket alone cannot show is a
chain deleted with its head: see the package docstring.

A write whose response was lost and which the client retried meets its own
object (412): when the stored bytes are the ones being written, that is success.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from loguru import logger

from functions.audit.errors import AuditConflictError
from functions.audit.files import LocalStorage
from functions.audit.settings import AuditSettings
from functions.audit.store import (
    HEAD,
    KEYS,
    LOG,
    PRUNED,
    AuditStorage,
    DayBatch,
    Segment,
    Tail,
    last_line_record,
)
from functions.errors import StorageUnavailableError
from functions.storage import Blob, ObjectStore, S3Objects, StorageSettings, WriteConflictError

LOGS = "logs/"
HEADS = "heads/"
_SEGMENT = re.compile(r"^logs/([A-Za-z0-9_.-]{1,100})/(\d{4}-\d{2}-\d{2})/\d{12}\.jsonl$")
_KEYRING_TRIES = 5


def segment_key(chain: str, day: str, first_seq: int) -> str:
    return f"{LOGS}{chain}/{day}/{first_seq:012d}{LOG}"


def _keyring_of(key: str) -> str:
    return key.removesuffix(LOG) + KEYS


class BucketStorage:
    """:class:`~functions.audit.store.AuditStorage` on an object store (scoped ``audit/``)."""

    unit = "object"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def sink(self, chain: str) -> ObjectSink:
        return ObjectSink(self.objects, chain)

    def segments(self) -> dict[str, list[Segment]]:
        chains: dict[str, list[Segment]] = {}
        for key in self.objects.keys(LOGS):  # sorted: by chain, day, then zero-padded seq
            found = _SEGMENT.match(key)
            if found:
                chain, day = found.groups()
                chains.setdefault(chain, []).append(Segment(chain, day, key))
        return chains

    def _read(self, key: str) -> bytes:
        blob = self.objects.get(key)
        return blob.data if isinstance(blob, Blob) else b""  # gone since listed: a gap

    def lines(self, segment: Segment) -> Iterator[bytes]:
        yield from self._read(segment.name).splitlines(keepends=True)

    def last_record(self, segment: Segment) -> dict[str, Any] | None:
        return last_line_record(self._read(segment.name))

    def keyring(self, segment: Segment) -> bytes:
        return self._read(_keyring_of(segment.name))

    def documents(self, suffix: str) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for key in self.objects.keys(HEADS):
            if key.endswith(suffix):
                blob = self.objects.get(key)
                found[key[len(HEADS) :].removesuffix(suffix)] = (
                    blob.data if isinstance(blob, Blob) else None
                )
        return found

    def head_slots(self) -> dict[str, tuple[bytes | None, ...]]:
        return {chain: (data,) for chain, data in self.documents(HEAD).items()}

    def put_document(self, chain: str, suffix: str, data: bytes) -> None:
        if suffix not in (HEAD, PRUNED):
            raise ValueError(f"not a signed document's suffix: {suffix!r}")
        self.objects.put(f"{HEADS}{chain}{suffix}", data)

    def drop_days(self, days: Sequence[str]) -> None:
        dropped = set(days)
        for key in self.objects.keys(LOGS):
            parts = key.split("/")
            if len(parts) == 4 and parts[2] in dropped:
                self.objects.delete(key)

    def keyrings(self) -> list[str]:
        return [key for key in self.objects.keys(LOGS) if key.endswith(KEYS)]

    def rewrite_keyring(self, name: str, change: Callable[[bytes], bytes | None]) -> None:
        for _ in range(_KEYRING_TRIES):  # only another rotation rewrites a sidecar
            blob = self.objects.get(name)
            if not isinstance(blob, Blob):
                return
            changed = change(blob.data)
            if changed is None:
                return
            try:
                self.objects.put(name, changed, if_match=blob.etag)
                return
            except WriteConflictError:
                continue
        raise AuditConflictError(f"{name} kept changing while it was being re-wrapped")


class ObjectSink:
    """One chain's objects and head in the bucket; see the module docstring."""

    def __init__(self, objects: ObjectStore, chain: str) -> None:
        self.objects, self.chain = objects, chain
        self._head_key = f"{HEADS}{chain}{HEAD}"
        self._head_etag: str | None = None
        self._unconfirmed: bytes | None = None  # a head put whose answer never came

    def resume(self) -> Tail:
        head = self.objects.get(self._head_key)
        head_data = None
        if isinstance(head, Blob):
            head_data, self._head_etag = head.data, head.etag
        keys = [k for k in self.objects.keys(f"{LOGS}{self.chain}/") if _SEGMENT.match(k)]
        if not keys:
            return Tail((head_data,), None, None)
        last = self.objects.get(keys[-1])
        data = last.data if isinstance(last, Blob) else b""
        return Tail((head_data,), keys[-1].split("/")[2], last_line_record(data))

    def _create(self, key: str, data: bytes) -> None:
        try:
            self.objects.put(key, data, create=True)
        except StorageUnavailableError:
            # the outcome is unknown: the object may have landed. Take it back (best effort),
            # or the next commit, reusing these seqs with other records, would meet it
            with contextlib.suppress(Exception):
                self.objects.delete(key)
            raise
        except WriteConflictError as exc:
            stored = self.objects.get(key)
            if isinstance(stored, Blob) and stored.data == data:
                return  # our own write, retried after its answer was lost
            raise AuditConflictError(
                f"audit chain {self.chain!r}: {key} exists already: another live writer "
                "uses this chain (give each gateway its own audit.instance_id, or none)"
            ) from exc

    def commit(self, batches: Sequence[DayBatch]) -> str:
        written: list[str] = []
        try:
            for batch in batches:
                key = segment_key(self.chain, batch.day, batch.first_seq)
                self._create(key, batch.records)
                written.append(key)
                if batch.keys:
                    self._create(_keyring_of(key), batch.keys)
                    written.append(_keyring_of(key))
        except BaseException:
            self._cut_back(written)
            raise
        return segment_key(self.chain, batches[-1].day, batches[-1].first_seq)

    def _cut_back(self, written: list[str]) -> None:
        """Delete the objects of a commit that failed, so its seqs can be written again."""
        for key in written:
            try:
                self.objects.delete(key)
            except Exception as exc:  # the next commit then meets it: loud, not silent
                logger.opt(exception=exc).error(
                    "audit: could not delete {} of a failed commit", key
                )

    def write_head(self, doc: dict[str, Any], sign: Callable[[dict[str, Any]], bytes]) -> None:
        """Replace the one head object, if it is still the one this writer put last."""
        data = sign(doc)
        earlier = self._unconfirmed  # a head of ours whose put got no answer, if any
        try:
            self._put_head(data)
        except WriteConflictError as exc:
            stored = self.objects.get(self._head_key)
            if isinstance(stored, Blob) and stored.data == data:
                self._head_etag = stored.etag  # our own write, retried after a lost answer
                return
            if isinstance(stored, Blob) and earlier is not None and stored.data == earlier:
                # an earlier head of ours landed though its answer was lost: go on from it
                self._head_etag, self._unconfirmed = stored.etag, None
                self._put_head(data)
                return
            raise AuditConflictError(
                f"the head of audit chain {self.chain!r} was replaced by another writer"
            ) from exc

    def _put_head(self, data: bytes) -> None:
        self._unconfirmed = data  # until the store says it has it
        if self._head_etag is None:
            self._head_etag = self.objects.put(self._head_key, data, create=True)
        else:
            self._head_etag = self.objects.put(self._head_key, data, if_match=self._head_etag)
        self._unconfirmed = None

    def close(self) -> None:
        """Nothing is held open: the objects are the state."""


def open_storage(audit: AuditSettings, storage: StorageSettings | None = None) -> AuditStorage:
    """The bucket's ``audit/`` prefix when ``storage`` names a bucket, else the directories."""
    if storage is not None and storage.remote:
        return BucketStorage(S3Objects.from_settings(storage).scoped("audit"))
    return LocalStorage(audit.directory, audit.heads_dir)
