"""The ``enclave audit …`` commands as functions: settings in, exit code out.

    verify      0 intact, 1 tampering found (each issue printed), 2 configuration error
    rotate-key  re-wrap every data key with ``audit.active_kek``; the other configured
                KEKs only unwrap. Afterwards remove them from ``audit.kek``.
    prune       delete days past ``audit.retention_days`` (refused, 1, if verify fails)
    keygen      print ``ENCLAVE_AUDIT_*`` lines with fresh keys for a local run

``rotate-key`` and ``prune`` are admin actions: each leaves an admin record, in a
chain of its own (``cli-<host>-<pid>-<random>``). Each command works on the storage
given (a bucket's ``audit/`` prefix), else on ``settings.directory``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from functions.audit.chain import ChainWriter
from functions.audit.envelope import rotate_kek
from functions.audit.errors import AuditError
from functions.audit.files import LocalStorage
from functions.audit.prune import prune
from functions.audit.records import build_admin_record
from functions.audit.settings import AuditKeys, AuditSettings, generate_keys, load_keys
from functions.audit.store import AuditStorage
from functions.audit.verify import verify
from functions.audit.writer import default_instance_id
from functions.errors import StorageUnavailableError

# what a command reports as a configuration or storage error (exit 2), not a traceback
FAILED = (AuditError, OSError, ValueError, StorageUnavailableError)


def _storage(settings: AuditSettings, storage: AuditStorage | None) -> AuditStorage:
    return storage or LocalStorage(settings.directory, settings.heads_dir)


def _record_admin(
    storage: AuditStorage, target: str, keys: AuditKeys, action: str, status: str
) -> None:
    chain = ChainWriter(storage, f"cli-{default_instance_id()}", keys, False)
    try:
        record = build_admin_record(
            trace_id=chain.chain, principal="cli", tenant=None, role="operator",
            action=action, status=status, target=target,
        )  # fmt: skip
        chain.append([record])
    finally:
        chain.close()


def verify_command(
    settings: AuditSettings, out: TextIO = sys.stdout, storage: AuditStorage | None = None
) -> int:
    try:
        keys = load_keys(settings, signing=False)
        report = verify(_storage(settings, storage), keys.public, keys.hmac)
    except FAILED as exc:
        print(f"audit verify: {exc}", file=out)
        return 2
    print(report.render(), file=out)
    return 0 if report.ok else 1


def rotate_command(
    settings: AuditSettings,
    out: TextIO = sys.stdout,
    storage: AuditStorage | None = None,
    target: str | None = None,
) -> int:
    where = _storage(settings, storage)
    try:
        keys = load_keys(settings)
        if keys.active_kek is None:
            raise AuditError("set audit.active_kek to the new KEK first")
        active = keys.active_kek
        result = rotate_kek(where, keys.keks, (active, keys.keks[active]))
        _record_admin(where, target or str(settings.directory), keys, "audit.rotate-key", "ok")
    except FAILED as exc:
        print(f"audit rotate-key: {exc}", file=out)
        return 2
    print(
        f"audit rotate-key: {result.rewrapped} data key(s) re-wrapped with {active} in "
        f"{result.files} file(s), {result.unchanged} already were; the other KEKs can go",
        file=out,
    )
    return 0


def prune_command(
    settings: AuditSettings,
    out: TextIO = sys.stdout,
    today: dt.date | None = None,
    storage: AuditStorage | None = None,
    target: str | None = None,
) -> int:
    where = _storage(settings, storage)
    try:
        keys = load_keys(settings)
        result = prune(where, keys, settings.retention_days, today=today)
        if result.refused is None:
            _record_admin(where, target or str(settings.directory), keys, "audit.prune", "ok")
    except FAILED as exc:
        print(f"audit prune: {exc}", file=out)
        return 2
    if result.refused is not None:
        print("audit prune: refused, verify first:\n" + result.refused.render(), file=out)
        return 1
    days = ", ".join(result.removed_days) or "nothing"
    print(f"audit prune: removed {days}; {result.checkpoints} checkpoint(s) signed", file=out)
    return 0


def keygen_command(directory: Path, out: TextIO = sys.stdout) -> int:
    try:
        fragment = generate_keys(directory)
    except AuditError as exc:
        print(f"audit keygen: {exc}", file=out)
        return 2
    for name, value in env_lines(fragment).items():
        print(f"{name}={value}", file=out)
    return 0


def env_lines(fragment: dict[str, Any]) -> dict[str, str]:
    """``generate_keys``' fields as ``ENCLAVE_AUDIT_*`` variables (``.env`` lines)."""
    return {
        f"ENCLAVE_AUDIT_{name.upper()}": json.dumps(value) if isinstance(value, dict) else value
        for name, value in fragment.items()
    }
