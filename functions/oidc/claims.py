"""From verified claims to who is calling: subject, tenant and role.

Only claims of a token whose signature, issuer, audience and dates were already
verified reach this module. A token that proves who it is but carries no tenant or
no role Enclave knows is a 403 (:class:`~functions.errors.PermissionDeniedError`),
not a 401: the credential is good, it just grants nothing here, and retrying it
will not help.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, get_args

from functions.errors import AuthenticationError, PermissionDeniedError
from functions.oidc.settings import TENANT_PATTERN, OIDCSettings, Role

#: strongest first: a token mapped to several roles gets the first of these
ROLE_PRIORITY: tuple[Role, ...] = get_args(Role)
MAX_SUBJECT_CHARS = 255
_TENANT = re.compile(TENANT_PATTERN)


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller. ``claims`` is the token's whole payload, read-only."""

    subject: str
    tenant: str
    role: Role
    issuer: str
    expires_at: int
    claims: Mapping[str, Any]

    @property
    def key_id(self) -> str:
        """A short, stable, non-identifying id for logs: the ``Principal.key_id`` of this caller."""
        digest = hashlib.sha256(f"{self.issuer}\n{self.subject}".encode()).hexdigest()[:12]
        return f"oidc-{digest}"


def claim_at(claims: Mapping[str, Any], path: str) -> object:
    """The claim named ``path``, or found by following its dots (``realm_access.roles``).

    A claim whose own name contains dots (``https://example.com/roles``) is found as is.
    """
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _claim_values(value: object) -> list[str]:
    """A claim read as a list of names: a string is one name, a list keeps its strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def map_role(claims: Mapping[str, Any], settings: OIDCSettings) -> Role:
    granted = {
        settings.role_map[v]
        for v in _claim_values(claim_at(claims, settings.roles_claim))
        if v in settings.role_map
    }
    for role in ROLE_PRIORITY:
        if role in granted:
            return role
    if settings.default_role is not None:
        return settings.default_role
    raise PermissionDeniedError("The token grants no role in this service.")


def map_tenant(claims: Mapping[str, Any], settings: OIDCSettings) -> str:
    value = claim_at(claims, settings.tenant_claim)
    if value is None:
        value = settings.default_tenant
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise PermissionDeniedError("The token names no valid tenant for this service.")
    return value


def identity_from(claims: dict[str, Any], settings: OIDCSettings) -> Identity:
    """The :class:`Identity` that verified ``claims`` describe; 401/403 when they cannot."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise AuthenticationError("The token has no valid subject ('sub').")
    for name in ("exp", "nbf", "iat"):  # the JWT library would also take "123" or true
        if name in claims and (
            isinstance(claims[name], bool) or not isinstance(claims[name], int | float)
        ):
            raise AuthenticationError(f"The token's '{name}' is not a number.")
    return Identity(
        subject=subject,
        tenant=map_tenant(claims, settings),
        role=map_role(claims, settings),
        issuer=settings.issuer,
        expires_at=int(claims["exp"]),
        claims=MappingProxyType(claims),
    )
