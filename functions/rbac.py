"""Roles, permissions, and what one principal may use.

    role      permissions
    admin     chat, models, manage keys, read audit, every collection of its tenant
    member    chat, models (limited by the key's model and collection lists)
    auditor   read audit

A key (or token) can narrow a role further with its own model and collection
lists; it can never widen it.
"""

from __future__ import annotations

from typing import Final

from functions.context import Principal
from functions.errors import PermissionDeniedError

CHAT: Final = "chat"
MANAGE_KEYS: Final = "keys:manage"
READ_AUDIT: Final = "audit:read"

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "admin": frozenset({CHAT, MANAGE_KEYS, READ_AUDIT}),
    "member": frozenset({CHAT}),
    "auditor": frozenset({READ_AUDIT}),
}


def allowed(principal: Principal, permission: str) -> bool:
    return permission in PERMISSIONS.get(principal.role, frozenset())


def require(principal: Principal | None, permission: str) -> Principal:
    if principal is None or not allowed(principal, permission):
        raise PermissionDeniedError(f"This key may not do that ({permission}).")
    return principal


def may_use_model(principal: Principal, model: str) -> bool:
    if not allowed(principal, CHAT):
        return False
    return principal.models is None or model in principal.models


def may_read_collection(principal: Principal, tenant: str, collection: str) -> bool:
    """Collections belong to a tenant; a principal reads only its own tenant's, if listed."""
    if principal.tenant != tenant or not allowed(principal, CHAT):
        return False
    return principal.collections is None or collection in principal.collections
