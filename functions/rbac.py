"""Roles, permissions, and what one principal may use.

    role      permissions
    admin     chat, models, manage keys, read audit, every collection of its tenant
    member    chat, models (limited by the key's model and collection lists)
    auditor   read audit

A key (or token) can narrow a role further with its own model and collection
lists; it can never widen it.

Rights only shrink: a principal grants (creates or rotates) only keys whose
:class:`Rights` lie within its own — a role it holds or one below it, a subset of
its models and collections, rates and a daily budget no larger (its end users'
too), a lifetime no longer; the frontend flag (``trust_user_headers``) only from
an admin or another frontend key. ``None`` means "no limit": a limited granter
cannot grant it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
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


# the roles each role may grant: admin above member and auditor, which are side by side
GRANTABLE: Final[dict[str, frozenset[str]]] = {
    "admin": frozenset({"admin", "member", "auditor"}),
    "member": frozenset({"member"}),
    "auditor": frozenset({"auditor"}),
}


@dataclass(frozen=True, slots=True)
class Rights:
    """What a key may do; every ``None`` is "unlimited"."""

    role: str
    models: Collection[str] | None = None
    collections: Collection[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    expires_at: datetime | None = None
    trust_user_headers: bool = False  # a frontend key, naming its end users
    user_rpm: int | None = None
    user_tpm: int | None = None
    user_daily_tokens: int | None = None


def _subset(mine: Collection[str] | None, theirs: Collection[str] | None) -> bool:
    return mine is None or (theirs is not None and set(theirs) <= set(mine))


def _at_most(mine: int | None, theirs: int | None) -> bool:
    return mine is None or (theirs is not None and theirs <= mine)


def _no_later(mine: datetime | None, theirs: datetime | None) -> bool:
    return mine is None or (theirs is not None and theirs <= mine)


_CHECKS: Final[tuple[tuple[str, Callable[[Rights, Rights], bool]], ...]] = (
    ("role", lambda g, k: k.role in GRANTABLE.get(g.role, frozenset())),
    ("models", lambda g, k: _subset(g.models, k.models)),
    ("collections", lambda g, k: _subset(g.collections, k.collections)),
    ("rpm", lambda g, k: _at_most(g.rpm, k.rpm)),
    ("tpm", lambda g, k: _at_most(g.tpm, k.tpm)),
    ("daily_tokens", lambda g, k: _at_most(g.daily_tokens, k.daily_tokens)),
    ("expires", lambda g, k: _no_later(g.expires_at, k.expires_at)),
    # an admin makes its tenant's frontend keys; any other granter only if it is one
    ("trust_user_headers", lambda g, k: not k.trust_user_headers or _frontend_granter(g)),
    ("user_rpm", lambda g, k: _at_most(g.user_rpm, k.user_rpm)),
    ("user_tpm", lambda g, k: _at_most(g.user_tpm, k.user_tpm)),
    ("user_daily_tokens", lambda g, k: _at_most(g.user_daily_tokens, k.user_daily_tokens)),
)


def _frontend_granter(granter: Rights) -> bool:
    return granter.role == "admin" or granter.trust_user_headers


def require_within(granter: Rights, granted: Rights) -> None:
    """Refuse (403) a key whose rights reach beyond the granter's own."""
    for name, within in _CHECKS:
        if not within(granter, granted):
            raise PermissionDeniedError(
                f"A key may not grant more than its own rights: '{name}' exceeds yours.",
                param=name,
            )
