"""Audit errors. They never reach a client: they stop a start-up or a CLI command.

AuditError               (base)
├── AuditConfigError     a key or setting the operation needs is missing or wrong
└── AuditKeyError        a data key cannot be unwrapped or content cannot be decrypted
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of the audit package's errors."""


class AuditConfigError(AuditError):
    pass


class AuditKeyError(AuditError):
    pass
