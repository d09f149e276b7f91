"""Audit errors. Most never reach a client: they stop a start-up or a CLI command.

AuditError                   (base)
├── AuditConfigError         a key or setting the operation needs is missing or wrong
├── AuditKeyError            a data key cannot be unwrapped or content cannot be decrypted
├── AuditConflictError       two live writers claim one chain (a bucket's create-only
│                            write of a record object or head was refused)
└── AuditUnavailableError    a record could not be made durable (also a 503
                             :class:`~functions.errors.ServiceUnavailableError`, code
                             ``audit_unavailable``: the gateway refuses what it cannot audit)
"""

from __future__ import annotations

from functions.errors import ServiceUnavailableError


class AuditError(Exception):
    """Base of the audit package's errors."""


class AuditConfigError(AuditError):
    pass


class AuditKeyError(AuditError):
    pass


class AuditConflictError(AuditError):
    pass


class AuditUnavailableError(ServiceUnavailableError, AuditError):
    """A record was not written, fsynced and covered by a signed head.

    ``reason`` says why (``queue_full``, ``writer_not_running``, ``write_failed: OSError``,
    ``head_write_failed``, ``writer_stopped``); the message is safe to show a client.
    """

    code = "audit_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__("The audit log cannot be written; refusing the request.")
        self.reason = reason
