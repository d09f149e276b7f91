"""``verify``: read every chain back and name each way it was tampered with.

Per chain, records are read in file order (days oldest first) and checked:

    edited        the MAC does not match the fields          (file, line, seq)
    deleted       seqs missing between two records          (range, the records around)
    reordered     a seq turns up after a later one
    duplicate     a seq seen twice
    broken_link   ``prev`` is not the previous record's MAC
    truncated     the signed head names a later seq than the log ends at: the tail
                  was cut off or a last day file deleted (the head is re-signed with
                  every commit, so it covers every record a caller was told is durable)
    head_mismatch the record at the head's seq has another MAC than the head
    forged_head   the head's (or a prune checkpoint's) Ed25519 signature fails, or a
                  head slot holds another chain's or the other slot's head (a slot
                  torn by a crash while it was written shows here too: the other
                  slot, whole, is checked against)
    missing_head  a chain without a signed head (deleted, or its writer died before the
                  first head): truncation would go unseen; or one of two head slots
    missing_chain a signed head names records but none of the chain is left: a whole
                  writer's records were deleted
    corrupt       a line that is not a record; misplaced: a record of another chain

Heads are read before logs: a live writer signs a head only after the records are
stored, so records beyond the head are a warning (``unsigned_tail``), not an error.

The same checks run on a directory and on a bucket (:class:`AuditStorage`): there a
"file" is one commit's object, so a deleted object in the middle of a chain is a gap
at an object boundary. A chain deleted together with its head leaves nothing to
compare against; only heads kept elsewhere (or a bucket's object lock) show that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from functions.audit.records import GENESIS, mac_of
from functions.audit.store import PRUNED, AuditStorage, Fault, Segment, newest_head, parse_signed

MAX_ISSUES_PER_CHAIN = 100


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str
    chain: str
    detail: str
    file: str | None = None
    line: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.file else f"chain {self.chain}"
        seq = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind:<13} {where}{seq}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    chains: int
    files: int
    records: int
    issues: tuple[Issue, ...]
    warnings: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues

    def kinds(self) -> set[str]:
        return {i.kind for i in self.issues}

    def render(self) -> str:
        counts = f"{self.chains} chain(s), {self.files} file(s), {self.records} record(s)"
        title = "OK" if self.ok else f"FAILED, {len(self.issues)} issue(s)"
        lines = [f"audit verify: {title}: {counts}"]
        lines += [f"  {issue}" for issue in self.issues]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


Position = tuple[str, int]  # file, line


@dataclass
class _Gap:
    lo: int
    hi: int
    after: Position | None
    before: Position | None


@dataclass
class _Chain:
    """The running check of one chain; fed records in file order."""

    name: str
    hmac_key: bytes
    unit: str = "day file"  # what a segment is called in findings
    pruned_seq: int = 0
    last_mac: str = GENESIS
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    gaps: list[_Gap] = field(default_factory=list)
    records: int = 0
    last_seq: int = 0
    max_seq: int = 0
    last_pos: Position | None = None
    macs_at: dict[int, str] = field(default_factory=dict)  # only the head's seq

    def flag(
        self, kind: str, detail: str, pos: Position | None = None, seq: int | None = None
    ) -> None:
        if len(self.issues) < MAX_ISSUES_PER_CHAIN:
            file, line = pos if pos else (None, None)
            self.issues.append(Issue(kind, self.name, detail, file, line, seq))

    def feed(self, pos: Position, raw: bytes, head_seq: int | None) -> None:
        try:
            record = orjson.loads(raw)
            seq, stored = record["seq"], record.get("mac")
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise TypeError(seq)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.flag("corrupt", "not an audit record", pos)
            return
        if record.get("chain") != self.name:
            self.flag("misplaced", f"record of chain {record.get('chain')!r}", pos, seq)
        if mac_of(self.hmac_key, record) != stored:
            self.flag("edited", "fields changed after sealing (MAC mismatch)", pos, seq)
        if seq <= self.pruned_seq:
            return  # kept past its prune checkpoint; already accounted for
        self.records += 1
        self._order(pos, seq)
        if seq == self.last_seq + 1 and record.get("prev") != self.last_mac:
            self.flag("broken_link", f"prev is not the MAC of seq {self.last_seq}", pos, seq)
        if seq == head_seq:
            self.macs_at[seq] = str(stored)
        self.last_seq, self.last_mac, self.last_pos = seq, str(stored), pos
        self.max_seq = max(self.max_seq, seq)

    def _order(self, pos: Position, seq: int) -> None:
        expected = self.max_seq + 1
        if seq > expected:
            self.gaps.append(_Gap(expected, seq - 1, self.last_pos, pos))
        elif seq < expected:
            if self._fill(seq):
                self.flag("reordered", f"seq {seq} comes after seq {self.max_seq}", pos, seq)
            else:
                self.flag("duplicate", f"seq {seq} appears more than once", pos, seq)

    def _fill(self, seq: int) -> bool:
        for i, gap in enumerate(self.gaps):
            if gap.lo <= seq <= gap.hi:
                parts = [_Gap(gap.lo, seq - 1, gap.after, gap.before)] if seq > gap.lo else []
                if seq < gap.hi:
                    parts.append(_Gap(seq + 1, gap.hi, gap.after, gap.before))
                self.gaps[i : i + 1] = parts
                return True
        return False

    def finish(self, head: dict[str, Any] | None) -> None:
        if head is not None:
            self._against_head(int(head["seq"]), str(head["mac"]), str(head.get("file")))
        for gap in self.gaps:
            count = gap.hi - gap.lo + 1
            span = f"seq {gap.lo}" if count == 1 else f"seqs {gap.lo}-{gap.hi}"
            detail = f"{span} missing ({count} record(s)) {_between(gap, self.unit)}"
            self.flag("deleted", detail, gap.before, gap.lo)

    def _against_head(self, seq: int, mac: str, file: str) -> None:
        if self.max_seq == 0 and seq > 0:
            detail = (
                f"the signed head of chain {self.name} names {seq} record(s), the last in "
                f"{file}, but not one is left: the writer's whole chain was deleted"
            )
            self.flag("missing_chain", detail, None, seq)
        elif self.max_seq < seq:
            ends = f"seq {self.max_seq} ({_at(self.last_pos)})" if self.last_pos else "no record"
            lost = self.max_seq + 1
            span = f"seq {seq}" if lost == seq else f"seqs {lost}-{seq}"
            detail = (
                f"chain {self.name} ends at {ends} but its signed head names seq {seq} in "
                f"{file}: {span} missing, {seq - self.max_seq} record(s) cut off the end"
            )
            self.flag("truncated", detail, self.last_pos, seq)
        elif self.max_seq > seq:
            tail = f"{self.max_seq - seq} record(s) after the signed head (a write in flight?)"
            self.warnings.append(Issue("unsigned_tail", self.name, tail))
        if self.macs_at.get(seq, mac) != mac:
            self.flag("head_mismatch", "the record at the head's seq is not the signed one")


def _at(pos: Position | None) -> str:
    return f"{pos[0]} line {pos[1]}" if pos else "the start"


def _between(gap: _Gap, unit: str) -> str:
    text = f"between {_at(gap.after)} and {_at(gap.before)}"
    if gap.before and gap.before[1] == 1 and (gap.after is None or gap.after[0] != gap.before[0]):
        text += f": at a boundary between {unit}s, a whole {unit} may have been deleted"
    return text


Signed = dict[str, tuple[dict[str, Any] | None, bool]]


def _documents(storage: AuditStorage, suffix: str, key: Ed25519PublicKey) -> Signed:
    return {chain: parse_signed(data, key) for chain, data in storage.documents(suffix).items()}


def _heads(
    storage: AuditStorage, key: Ed25519PublicKey
) -> dict[str, tuple[dict[str, Any] | None, list[Fault]]]:
    return {chain: newest_head(slots, key, chain) for chain, slots in storage.head_slots().items()}


def _lines(storage: AuditStorage, segment: Segment) -> Iterable[tuple[int, bytes, bool]]:
    for number, raw in enumerate(storage.lines(segment), start=1):
        yield number, raw, raw.endswith(b"\n")


def verify(storage: AuditStorage, public_key: Ed25519PublicKey, hmac_key: bytes) -> VerifyReport:
    """Check every chain in ``storage`` against its signed head; see the module doc."""
    heads = _heads(storage, public_key)  # before the logs: see module doc
    checkpoints = _documents(storage, PRUNED, public_key)
    logs = storage.segments()
    issues: list[Issue] = []
    warnings: list[Issue] = []
    records = 0
    for name in sorted(set(logs) | set(heads) | set(checkpoints)):
        check = _check_chain(name, hmac_key, storage, logs.get(name, []), heads, checkpoints)
        issues += check.issues
        warnings += check.warnings
        records += check.records
    files = sum(len(days) for days in logs.values())
    return VerifyReport(len(set(logs) | set(heads)), files, records, tuple(issues), tuple(warnings))


def _check_chain(
    name: str,
    hmac_key: bytes,
    storage: AuditStorage,
    logs: list[Segment],
    heads: dict[str, tuple[dict[str, Any] | None, list[Fault]]],
    checkpoints: Signed,
) -> _Chain:
    check = _Chain(name, hmac_key, storage.unit)
    head, faults = heads.get(name, (None, []))
    if name not in heads:
        check.flag("missing_head", "no signed head: truncation of this chain cannot be seen")
    for kind, detail in faults:
        check.flag(kind, detail)
    if name in checkpoints:
        point, point_ok = checkpoints[name]
        if point_ok and point is not None and point.get("chain") != name:
            check.flag(
                "forged_head", f"the checkpoint names chain {str(point.get('chain'))[:100]!r}"
            )
        elif point_ok and point is not None and head is not None and point["seq"] > head["seq"]:
            check.flag("forged_head", "the checkpoint is past the chain's signed head")
        elif point_ok and point is not None:
            check.pruned_seq = check.last_seq = check.max_seq = int(point["seq"])
            check.last_mac = str(point["mac"])
        else:
            check.flag("forged_head", "the prune checkpoint's signature does not verify")
    head_seq = int(head["seq"]) if head is not None else None
    for segment in logs:
        file = segment.name
        for number, raw, complete in _lines(storage, segment):
            if not complete:
                torn = Issue("partial_line", name, "a write in flight?", file, number)
                check.warnings.append(torn)
            elif raw.strip():
                check.feed((file, number), raw, head_seq)
    check.finish(head)
    return check
