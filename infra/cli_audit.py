"""``enclave audit verify|rotate-key|prune|keygen``: the audit log from the command line.

``verify`` exits 0 when every chain is intact, 1 when tampering is found (each
finding names the file, line and record), 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from functions.audit.commands import keygen_command, prune_command, rotate_command, verify_command
from functions.audit.local import add_local_kek, resolve_audit
from functions.settings import Settings


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


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.audit_command == "keygen":
        return keygen_command(args.directory)
    if args.audit_command == "rotate-key" and args.generate:
        print(f"new KEK {add_local_kek(settings.data_dir)} is now active")
    audit = resolve_audit(settings.audit, settings.data_dir)
    if args.audit_command == "verify":
        return verify_command(audit)
    if args.audit_command == "rotate-key":
        return rotate_command(audit)
    return prune_command(audit, today=args.today)
