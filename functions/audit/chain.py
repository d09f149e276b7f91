"""One writer's hash chain: seal records, append them per UTC day, sign the head.

Decision: one chain per writer instance, not one file-locked chain. Gateway
processes on one host, and Modal containers sharing a Volume, may all write at
once; flock does not hold across hosts, and a Modal Volume merges files from
containers last-writer-wins, so a shared chain would need a lock that does not
exist there. A chain of its own per instance needs no lock at all: each writer
appends only to ``YYYY-MM-DD/<instance>.jsonl`` and rewrites only
``<heads>/<instance>.head.json``. ``verify`` checks every chain it finds; the record
``ts`` interleaves them when read together. The instance id defaults to
``<host>-<pid>-<random>``, fresh per process; a fixed ``instance_id`` resumes its chain
from the last record (a per-host lock file stops two live processes sharing it).

The chain runs across days: a day's first record links to the previous day's last,
so a whole missing day shows as a gap. A record lands in the file of its ``ts`` day,
never an earlier day than the record before it.

Each :meth:`ChainWriter.append` is one commit: the records are written and fsynced
(and the directories of files it created), then the head is re-signed to name
the commit's last record and replaced durably (its directory fsynced too). When
``append`` returns, the records are on disk and a verifier that finds fewer
records than the head names reports the chain ``truncated``: what a caller was
told is durable cannot be cut off the end unseen.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from loguru import logger

from functions.audit.envelope import WrappedKey, encrypt_content
from functions.audit.errors import AuditConfigError
from functions.audit.records import CONTENT, GENESIS, day_of, format_ts, mac_of
from functions.audit.settings import AuditKeys
from functions.audit.store import (
    append_durably,
    fsync_dir,
    head_path,
    keys_path,
    last_record,
    list_logs,
    log_path,
    read_signed,
    relative,
    sign,
    write_atomic,
)

RESERVED = frozenset({"seq", "chain", "prev", "mac", "encrypted_content", CONTENT})


@dataclass(frozen=True, slots=True)
class ChainState:
    seq: int = 0
    mac: str = GENESIS
    day: str = "0000-00-00"


class HeadWriteError(Exception):
    """Records were written durably, but the signed head could not be updated."""


class ChainWriter:
    """Appends batches to one chain; used from one thread at a time (the writer's)."""

    def __init__(
        self, directory: Path, heads: Path, chain: str, keys: AuditKeys, capture: bool
    ) -> None:
        if keys.signing is None:
            raise AuditConfigError("writing audit records needs the signing key")
        self.directory, self.heads, self.chain = directory, heads, chain
        self._keys, self._signing, self._capture = keys, keys.signing, capture
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
        try:
            self.state = self._resume()
        except BaseException:
            self._lock.close()
            raise
        self._file: IO[bytes] | None = None
        self._file_day = ""
        self._new_entries: set[Path] = set()  # directories to fsync: they gained a file

    def _resume(self) -> ChainState:
        path = head_path(self.heads, self.chain)
        head: dict[str, Any] | None = None
        if path.exists():
            head, valid = read_signed(path, self._keys.public)
            if not valid or head is None:
                raise AuditConfigError(f"the head of audit chain {self.chain!r} fails its check")
        logs = list_logs(self.directory).get(self.chain, [])
        if head is None and logs:
            raise AuditConfigError(f"audit chain {self.chain!r} has records but no signed head")
        state = ChainState() if head is None else ChainState(head["seq"], head["mac"])
        if not logs:
            return state
        day, last_log = logs[-1]
        last = last_record(last_log, repair=True)
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

    def _encode(
        self, events: Sequence[dict[str, Any]]
    ) -> tuple[dict[str, list[bytes]], dict[str, list[WrappedKey]], ChainState]:
        lines: dict[str, list[bytes]] = {}
        wrapped: dict[str, list[WrappedKey]] = {}
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
            lines.setdefault(day, []).append(orjson.dumps(record) + b"\n")
            state = ChainState(record["seq"], record["mac"], day)
        return lines, wrapped, state

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

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Seal and write ``events`` durably (fsync), then re-sign the head: one commit.

        All or nothing: on failure the files are cut back to where they were and
        the chain state is unchanged. :class:`HeadWriteError` means the records are
        written but the head still names the previous batch.
        """
        lines, wrapped, state = self._encode(events)
        written: list[tuple[IO[bytes], int]] = []
        try:
            for day, day_lines in lines.items():
                out = self._open(day)
                written.append((out, out.tell()))
                out.write(b"".join(day_lines))
                out.flush()
                os.fsync(out.fileno())
                if day in wrapped:
                    sidecar = keys_path(log_path(self.directory, day, self.chain))
                    if not sidecar.exists():
                        self._new_entries.add(sidecar.parent)
                    append_durably(sidecar, b"".join(k.line() for k in wrapped[day]))
            for entries in sorted(self._new_entries, key=lambda p: len(p.parts), reverse=True):
                fsync_dir(entries)  # a new file's name survives a crash with its data
            self._new_entries.clear()
        except BaseException:
            _cut_back(written)
            raise
        self.state = state
        try:
            self._write_head()
        except OSError as exc:
            raise HeadWriteError(str(exc)) from exc

    def _write_head(self) -> None:
        s = self.state
        head = {
            "chain": self.chain,
            "seq": s.seq,
            "mac": s.mac,
            "count": s.seq,
            "file": relative(self.directory, log_path(self.directory, s.day, self.chain)),
            "updated": format_ts(time.time()),
        }
        # durable before append returns: it is what makes a cut-off tail visible. A crash
        # before this line leaves records past the head: an unsigned tail, not tampering
        write_atomic(head_path(self.heads, self.chain), sign(self._signing, head))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._lock.close()


def _cut_back(written: list[tuple[IO[bytes], int]]) -> None:
    for out, position in written:
        try:
            out.truncate(position)
            out.seek(position)
        except OSError:
            logger.exception("audit: could not cut back a partly written batch")
