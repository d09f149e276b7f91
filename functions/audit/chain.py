"""One writer's hash chain: seal records, append them per UTC day, sign the head.

Decision: one chain per writer instance, not one file-locked chain. Gateway
processes on one host, and Modal containers sharing a Volume, may all write at
once; flock does not hold across hosts, and a Modal Volume merges files from
containers last-writer-wins, so a shared chain would need a lock that does not
exist there. A chain of its own per instance needs no lock at all: each writer
appends only to its own segments (``YYYY-MM-DD/<instance>.jsonl`` in a directory,
one new object per commit in a bucket) and rewrites only its own head. ``verify``
checks every chain it finds; the record ``ts`` interleaves them when read together.
The instance id defaults to ``<host>-<pid>-<random>``, fresh per process; a fixed
``instance_id`` resumes its chain from the last record (a per-host lock file, or in
a bucket the create-only writes, stop two live processes sharing it).

The chain runs across days: a day's first record links to the previous day's last,
so a whole missing day shows as a gap. A record lands in the file of its ``ts`` day,
never an earlier day than the record before it.

Each :meth:`ChainWriter.append` is one commit: the records are made durable by the
storage's :class:`~functions.audit.store.ChainSink` (written and fsynced with the
directories of new files; or one new object), then the head is re-signed to name
the commit's last record and replaced durably (in a directory: the older of its two
slots overwritten in place, see :mod:`functions.audit.store`). When ``append`` returns, the
records are stored and a verifier that finds fewer records than the head names
reports the chain ``truncated``: what a caller was told is durable cannot be cut
off the end unseen. The sealing is the same on every storage, so is ``verify``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from loguru import logger

from functions.audit.envelope import WrappedKey, encrypt_content
from functions.audit.errors import AuditConfigError
from functions.audit.records import CONTENT, GENESIS, day_of, format_ts, mac_of
from functions.audit.settings import AuditKeys
from functions.audit.store import AuditStorage, DayBatch, newest_head, sign

RESERVED = frozenset({"seq", "chain", "prev", "mac", "encrypted_content", CONTENT})


@dataclass(frozen=True, slots=True)
class ChainState:
    seq: int = 0
    mac: str = GENESIS
    day: str = "0000-00-00"


class HeadWriteError(Exception):
    """Records were written durably, but the signed head could not be updated."""


class ChainWriter:
    """Appends batches to one chain; used from one thread at a time (the writer's).

    Blocking (files or HTTP): the gateway calls it through :func:`asyncio.to_thread`.
    """

    def __init__(self, storage: AuditStorage, chain: str, keys: AuditKeys, capture: bool) -> None:
        if keys.signing is None:
            raise AuditConfigError("writing audit records needs the signing key")
        self.chain = chain
        self._keys, self._signing, self._capture = keys, keys.signing, capture
        self._sink = storage.sink(chain)
        try:
            self.state = self._resume()
        except BaseException:
            self._sink.close()
            raise
        self._segment = ""  # the segment holding the last record, as the head names it

    def _resume(self) -> ChainState:
        tail = self._sink.resume()
        head, faults = newest_head(tail.heads, self._keys.public, self.chain)
        if head is None and any(slot is not None for slot in tail.heads):
            raise AuditConfigError(f"the head of audit chain {self.chain!r} fails its check")
        for _, fault in faults:  # a slot torn by a crash, or tampered with: verify reports it
            logger.error("audit chain {}: {}; resuming from the sound head", self.chain, fault)
        if head is None and tail.day is not None:
            raise AuditConfigError(f"audit chain {self.chain!r} has records but no signed head")
        state = ChainState() if head is None else ChainState(head["seq"], head["mac"])
        if tail.day is None:
            return state
        last, day = tail.last, tail.day
        if last is None or mac_of(self._keys.hmac, last) != last.get("mac"):
            logger.error("audit chain {} resumes from its head: last record unreadable", self.chain)
            return ChainState(state.seq, state.mac, day)
        if last["seq"] < state.seq:
            logger.error("audit chain {} ends before its signed head; run verify", self.chain)
            return ChainState(state.seq, state.mac, day)
        return ChainState(last["seq"], last["mac"], day)

    def _seal(self, event: dict[str, Any], state: ChainState) -> tuple[dict[str, Any], Any]:
        fields = {k: v for k, v in event.items() if k not in RESERVED}
        ts = fields.get("ts")
        if ts is None or isinstance(ts, int | float):  # unix seconds from AuditLog.record
            fields["ts"] = format_ts(time.time() if ts is None else ts)
        record = {"seq": state.seq + 1, "chain": self.chain, **fields, "prev": state.mac}
        return record, event.get(CONTENT)

    def _encode(self, events: Sequence[dict[str, Any]]) -> tuple[list[DayBatch], ChainState]:
        lines: dict[str, list[bytes]] = {}
        wrapped: dict[str, list[WrappedKey]] = {}
        first: dict[str, int] = {}
        state = self.state
        kek_id = self._keys.active_kek
        for event in events:
            record, content = self._seal(event, state)
            day = max(day_of(record["ts"]) or format_ts(time.time())[:10], state.day)
            if self._capture and content is not None and kek_id is not None:
                sealed, key = encrypt_content(record, content, kek_id, self._keys.keks[kek_id])
                record["encrypted_content"] = sealed
                wrapped.setdefault(day, []).append(key)
            record["mac"] = mac_of(self._keys.hmac, record)
            first.setdefault(day, record["seq"])
            lines.setdefault(day, []).append(orjson.dumps(record) + b"\n")
            state = ChainState(record["seq"], record["mac"], day)
        batches = [
            DayBatch(
                day,
                first[day],
                b"".join(day_lines),
                b"".join(k.line() for k in wrapped.get(day, ())),
            )
            for day, day_lines in lines.items()
        ]
        return batches, state

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Seal and store ``events`` durably, then re-sign the head: one commit.

        All or nothing: on failure the storage is cut back to where it was and the
        chain state is unchanged. :class:`HeadWriteError` means the records are
        stored but the head still names the previous batch.
        """
        batches, state = self._encode(events)
        if not batches:
            return
        self._segment = self._sink.commit(batches)
        self.state = state
        try:
            self._write_head()
        except Exception as exc:  # OSError, an unreachable bucket, a head replaced by another
            raise HeadWriteError(str(exc)) from exc

    def _write_head(self) -> None:
        s = self.state
        head = {
            "chain": self.chain,
            "seq": s.seq,
            "mac": s.mac,
            "count": s.seq,
            "file": self._segment,
            "updated": format_ts(time.time()),
        }
        # durable before append returns: it is what makes a cut-off tail visible. A crash
        # before this line leaves records past the head: an unsigned tail, not tampering
        self._sink.write_head(head, partial(sign, self._signing))

    def close(self) -> None:
        self._sink.close()
