"""Retention: delete whole days past ``retention_days``, leaving a signed checkpoint.

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
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from functions.audit.errors import AuditConfigError
from functions.audit.records import format_ts, mac_of
from functions.audit.settings import AuditKeys
from functions.audit.store import (
    checkpoint_path,
    last_record,
    list_logs,
    sign,
    write_atomic,
)
from functions.audit.verify import VerifyReport, verify


@dataclass(frozen=True, slots=True)
class PruneReport:
    removed_days: tuple[str, ...]
    checkpoints: int  # chains given a new "pruned up to" checkpoint
    refused: VerifyReport | None = None  # set when verify found tampering: nothing pruned


def _checkpoints(directory: Path, cutoff: str, hmac_key: bytes) -> dict[str, dict[str, object]]:
    """Per chain, the last record it has before ``cutoff``."""
    points: dict[str, dict[str, object]] = {}
    for chain, logs in list_logs(directory).items():
        old = [path for day, path in logs if day < cutoff]
        if not old:
            continue
        last = last_record(old[-1])
        if last is None or mac_of(hmac_key, last) != last.get("mac"):
            raise AuditConfigError(f"cannot read the last record of {old[-1]}")
        points[chain] = {"chain": chain, "seq": last["seq"], "mac": last["mac"], "before": cutoff}
    return points


def prune(
    directory: Path,
    keys: AuditKeys,
    retention_days: int,
    *,
    heads_directory: Path | None = None,
    today: dt.date | None = None,
) -> PruneReport:
    """Remove every day older than ``retention_days`` before ``today`` (UTC)."""
    if keys.signing is None:
        raise AuditConfigError("pruning signs checkpoints: it needs the signing key")
    heads = heads_directory or directory.parent / "audit-heads"
    report = verify(directory, keys.public, keys.hmac, heads_directory=heads)
    if not report.ok:
        return PruneReport((), 0, refused=report)
    cutoff = (
        (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=retention_days)
    ).isoformat()
    points = _checkpoints(directory, cutoff, keys.hmac)
    heads.mkdir(parents=True, exist_ok=True)
    for chain, point in points.items():
        point["pruned_at"] = format_ts(time.time())
        write_atomic(checkpoint_path(heads, chain), sign(keys.signing, point))
    days = sorted(
        {day for logs in list_logs(directory).values() for day, _ in logs if day < cutoff}
    )
    for day in days:
        shutil.rmtree(directory / day)
    return PruneReport(tuple(days), len(points))
