"""Tamper-evident audit log: one sealed JSON record per request and per admin action.

    records.py   the record schema, builders, and the chain MAC
    settings.py  ``AuditSettings`` (``settings.audit``), key loading, key generation
    store.py     the storage seam (``AuditStorage``), the file layout, signed documents
    files.py     ``LocalStorage``: day files appended and fsynced, flock per chain
    bucket.py    ``BucketStorage``: one create-only object per commit; ``open_storage``
    chain.py     one writer's hash chain (why one chain per writer: see there)
    envelope.py  content capture: AES-256-GCM, wrapped data keys, KEK rotation
    writer.py    ``AuditLog``: non-blocking ``record()``, awaitable ``durable()``, group commits
    verify.py    ``verify``: which record was edited, deleted, reordered or cut off
    prune.py     retention with signed checkpoints
    commands.py  ``enclave audit verify | rotate-key | prune | keygen``

Threat model, in short: without the HMAC key no record can be changed, added or
removed unseen; without the Ed25519 private key no head or prune checkpoint can be
forged. Whoever can delete a chain's log files *and* its head can make a whole chain
vanish: keep ``heads_directory`` on storage the gateway's operators cannot rewrite,
or copy heads off-host (in a bucket: object lock or versioning on ``audit/``, or a
replica of ``audit/heads/``). Deleting either alone is named by ``verify``
(``missing_head``, ``missing_chain``). The gateway holds both keys, so this detects
tampering with the storage, not by a compromised gateway process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from functions.audit.bucket import BucketStorage, open_storage
    from functions.audit.commands import (
        env_lines,
        keygen_command,
        prune_command,
        rotate_command,
        verify_command,
    )
    from functions.audit.envelope import (
        RotateReport,
        WrappedKey,
        decrypt_content,
        load_keyring,
        rotate_kek,
    )
    from functions.audit.errors import (
        AuditConfigError,
        AuditConflictError,
        AuditError,
        AuditKeyError,
        AuditUnavailableError,
    )
    from functions.audit.files import LocalStorage
    from functions.audit.records import build_admin_record, build_request_record
    from functions.audit.settings import AuditKeys, AuditSettings, generate_keys, load_keys
    from functions.audit.store import AuditStorage
    from functions.audit.writer import AuditLog

# The public names, each imported from its module on first use: Settings holds an
# AuditSettings, so ``functions.audit.settings`` is imported wherever Settings is (the
# inference node too), and must not load the writer, the verifier and the commands.
_LAZY = {
    "AuditConfigError": "errors",
    "AuditConflictError": "errors",
    "AuditError": "errors",
    "AuditKeyError": "errors",
    "AuditKeys": "settings",
    "AuditLog": "writer",
    "AuditSettings": "settings",
    "AuditStorage": "store",
    "AuditUnavailableError": "errors",
    "BucketStorage": "bucket",
    "LocalStorage": "files",
    "RotateReport": "envelope",
    "WrappedKey": "envelope",
    "build_admin_record": "records",
    "build_request_record": "records",
    "decrypt_content": "envelope",
    "env_lines": "commands",
    "generate_keys": "settings",
    "keygen_command": "commands",
    "load_keyring": "envelope",
    "load_keys": "settings",
    "open_storage": "bucket",
    "prune_command": "commands",
    "rotate_command": "commands",
    "rotate_kek": "envelope",
    "verify_command": "commands",
}

# ``prune`` and ``verify`` share their modules' names: importing the module would rebind
# the package attribute to it, so these two (light: no writer) are imported now
from functions.audit.prune import PruneReport, prune  # noqa: E402
from functions.audit.verify import Issue, VerifyReport, verify  # noqa: E402

__getattr__ = exports(__name__, _LAZY, globals())


__all__ = [
    "AuditConfigError",
    "AuditConflictError",
    "AuditError",
    "AuditKeyError",
    "AuditKeys",
    "AuditLog",
    "AuditSettings",
    "AuditStorage",
    "AuditUnavailableError",
    "BucketStorage",
    "Issue",
    "LocalStorage",
    "PruneReport",
    "RotateReport",
    "VerifyReport",
    "WrappedKey",
    "build_admin_record",
    "build_request_record",
    "decrypt_content",
    "env_lines",
    "generate_keys",
    "keygen_command",
    "load_keyring",
    "load_keys",
    "open_storage",
    "prune",
    "prune_command",
    "rotate_command",
    "rotate_kek",
    "verify",
    "verify_command",
]
