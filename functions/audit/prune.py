"""Retention: delete whole days past ``retention_days``, leaving a signed checkpoint.

The same on a directory (day folders go) and a bucket (the day's objects go).
Before a day goes, each chain in it gets ``<heads>/<chain>.pruned.json``, signed:
the seq and MAC of its last record in the days removed. ``verify`` starts that chain
there instead of at seq 1, so retention is not read as deletion, while deleting
anything the checkpoint does not cover still is. The checkpoint is written before
the days are removed; a crash between leaves records that verify skips. The live
writer never writes checkpoints, so pruning needs no pause in writing.

Pruning checks first: it refuses while ``verify`` finds tampering, so that a prune
never launders an edited or deleted record out of sight.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from functions.audit.errors import AuditConfigError
from functions.audit.records import format_ts, mac_of
from functions.audit.settings import AuditKeys
from functions.audit.store import PRUNED, AuditStorage, Segment, sign
from functions.audit.verify import VerifyReport, verify


@dataclass(frozen=True, slots=True)
class PruneReport:
    removed_days: tuple[str, ...]
    checkpoints: int  # chains given a new "pruned up to" checkpoint
    refused: VerifyReport | None = None  # set when verify found tampering: nothing pruned


def _checkpoints(
    storage: AuditStorage, chains: dict[str, list[Segment]], cutoff: str, hmac_key: bytes
) -> dict[str, dict[str, object]]:
    """Per chain, the last record it has before ``cutoff``."""
    points: dict[str, dict[str, object]] = {}
    for chain, segments in chains.items():
        old = [segment for segment in segments if segment.day < cutoff]
        if not old:
            continue
        last = storage.last_record(old[-1])
        if last is None or mac_of(hmac_key, last) != last.get("mac"):
            raise AuditConfigError(f"cannot read the last record of {old[-1].name}")
        points[chain] = {"chain": chain, "seq": last["seq"], "mac": last["mac"], "before": cutoff}
    return points


def prune(
    storage: AuditStorage,
    keys: AuditKeys,
    retention_days: int,
    *,
    today: dt.date | None = None,
) -> PruneReport:
    """Remove every day older than ``retention_days`` before ``today`` (UTC)."""
    if keys.signing is None:
        raise AuditConfigError("pruning signs checkpoints: it needs the signing key")
    report = verify(storage, keys.public, keys.hmac)
    if not report.ok:
        return PruneReport((), 0, refused=report)
    cutoff = (
        (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=retention_days)
    ).isoformat()
    chains = storage.segments()
    points = _checkpoints(storage, chains, cutoff, keys.hmac)
    for chain, point in points.items():
        point["pruned_at"] = format_ts(time.time())
        storage.put_document(chain, PRUNED, sign(keys.signing, point))
    days = sorted({s.day for segments in chains.values() for s in segments if s.day < cutoff})
    storage.drop_days(days)
    return PruneReport(tuple(days), len(points))
