"""Who may read or write a collection: a small policy object the gateway passes in.

Collection names in a request are resolved in the caller's tenant namespace
(``"handbook"`` is ``<caller's tenant>/handbook``); ``"other/handbook"`` names
another tenant's collection explicitly, which the default policy refuses. So a
guessed name never reaches another tenant's data: either it is looked up in the
caller's own namespace, or it is refused with 403 before anything is searched.

Until roles and tenants land (#3) every valid key is a member of tenant
``"default"`` and may read that tenant's collections. #3 plugs in by passing its
own :class:`CollectionAccess` (e.g. per-key collection grants) to the knowledge base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from functions.errors import PermissionDeniedError
from functions.knowledge.store import CollectionRef


class Caller(Protocol):
    """Who is asking; :class:`functions.context.Principal` fits."""

    @property
    def tenant(self) -> str: ...

    @property
    def role(self) -> str: ...


class CollectionAccess(Protocol):
    """The policy: may ``caller`` read (retrieve from) or write (ingest into) ``ref``?"""

    def can_read(self, caller: Caller, ref: CollectionRef) -> bool: ...

    def can_write(self, caller: Caller, ref: CollectionRef) -> bool: ...


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """Default policy: read your own tenant's collections; write them with a write role."""

    write_roles: frozenset[str] = field(default_factory=lambda: frozenset({"admin"}))

    def can_read(self, caller: Caller, ref: CollectionRef) -> bool:
        return caller.tenant == ref.tenant

    def can_write(self, caller: Caller, ref: CollectionRef) -> bool:
        return caller.tenant == ref.tenant and caller.role in self.write_roles


def readable(access: CollectionAccess, caller: Caller, names: Sequence[str]) -> list[CollectionRef]:
    """Resolve ``names`` for ``caller``; raise 403 if any is not readable.

    The message names the collection as the caller wrote it and says nothing
    about whether it exists.
    """
    refs = [CollectionRef.parse(name, caller.tenant) for name in dict.fromkeys(names)]
    for name, ref in zip(dict.fromkeys(names), refs, strict=True):
        if not access.can_read(caller, ref):
            raise PermissionDeniedError(f"You may not read collection {name!r}.")
    return refs


def writable(access: CollectionAccess, caller: Caller, name: str) -> CollectionRef:
    """Resolve ``name`` for ``caller``; raise 403 unless the caller may ingest into it."""
    ref = CollectionRef.parse(name, caller.tenant)
    if not access.can_write(caller, ref):
        raise PermissionDeniedError(f"You may not add documents to collection {name!r}.")
    return ref
