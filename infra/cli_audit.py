"""``enclave audit verify|rotate-key|prune|keygen``: the audit log from the command line.

``verify`` exits 0 when every chain is intact, 1 when tampering is found (each
finding names the file, line and record), 2 on a configuration error. Every command
works on the storage the settings name: a local directory, or with
``ENCLAVE_STORAGE_URI=s3://…`` the bucket's ``audit/`` prefix, every writer's chain.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from functions.audit.bucket import open_storage
from functions.audit.commands import keygen_command, prune_command, rotate_command, verify_command
from functions.audit.errors import AuditError
from functions.audit.local import add_local_kek, resolve_audit
from functions.audit.settings import AuditSettings
from functions.audit.store import AuditStorage
from functions.settings import Settings

NO_LOCAL_KEK = (
    "audit rotate-key --generate: with a bucket (ENCLAVE_STORAGE_URI=s3://…) there is no "
    "local key set to add a KEK to. Make one with `enclave audit keygen DIR`, add it to "
    "ENCLAVE_AUDIT_KEK beside the old ones and name it in ENCLAVE_AUDIT_ACTIVE_KEK (in every "
    "gateway's secret), then run `enclave audit rotate-key` without --generate"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="verify and maintain the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    actions.add_parser("verify", help="check every chain for edits, gaps, reordering, cuts")
    rotate = actions.add_parser("rotate-key", help="re-wrap content keys with the active KEK")
    rotate.add_argument(
        "--generate",
        action="store_true",
        help="first make a new KEK the active one (local key set only)",
    )
    prune = actions.add_parser("prune", help="delete days past the retention period")
    prune.add_argument("--today", type=dt.date.fromisoformat, help="YYYY-MM-DD (tests)")
    keygen = actions.add_parser("keygen", help="make a key set for ENCLAVE_AUDIT_* variables")
    keygen.add_argument("directory", type=Path)


def audit_of(settings: Settings) -> tuple[AuditSettings, AuditStorage]:
    """The audit settings and storage the gateway writes with: a directory or the bucket.

    Raises :class:`~functions.audit.errors.AuditError` (keys missing on a bucket…).
    """
    audit = resolve_audit(settings.audit, settings.local_dir, settings.storage)
    return audit, open_storage(audit, settings.storage)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.audit_command == "keygen":
        return keygen_command(args.directory)
    storage = settings.storage
    local = settings.local_dir
    if args.audit_command == "rotate-key" and args.generate:
        if storage.remote:
            print(NO_LOCAL_KEK)
            return 2
        print(f"new KEK {add_local_kek(local)} is now active")
    try:
        audit = resolve_audit(settings.audit, local, storage)
    except AuditError as exc:
        print(f"audit {args.audit_command}: {exc}")
        return 2
    where = open_storage(audit, storage)
    target = storage.uri if storage.remote and storage.uri else str(audit.directory)
    if args.audit_command == "verify":
        return verify_command(audit, storage=where)
    if args.audit_command == "rotate-key":
        return rotate_command(audit, storage=where, target=target)
    return prune_command(audit, today=args.today, storage=where, target=target)
