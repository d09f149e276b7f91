"""Admin function URLs: the key store over HTTP, for principals with ``keys:manage``.

    POST /v1/admin/keys                 create (body: KeySpec) → the key, shown once
    GET  /v1/admin/keys                 list (no key material, digests withheld)
    POST /v1/admin/keys/{id}/revoke     revoke
    POST /v1/admin/keys/{id}/rotate     new key, same policy; the old one revoked

An admin manages the keys of its own tenant; the bootstrap admin (tenant
``default``) manages every tenant's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.auth import caller
from functions.context import Principal, Step
from functions.edge import json_response, read_json
from functions.errors import PermissionDeniedError, RouteNotFoundError
from functions.keys import KeyRecord, KeySpec, KeyStore

ADMIN_BODY_LIMIT = 16_384

# called with (principal, action, details) for every admin action: the audit hook
AdminRecorder = Callable[[Principal, str, dict[str, Any]], None]


def public_view(record: KeyRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude={"digest"})


def _may_manage(principal: Principal, tenant: str) -> bool:
    return principal.key_id.startswith("bootstrap-") or principal.tenant == tenant


def admin_routes(
    keys: KeyStore, authenticate: Step, record: AdminRecorder | None = None
) -> list[Route]:
    async def admin(request: Request) -> Principal:
        return rbac.require(await caller(authenticate, request), rbac.MANAGE_KEYS)

    def owned(principal: Principal, key_id: str) -> KeyRecord:
        for found in keys.records():
            if found.id == key_id and _may_manage(principal, found.tenant):
                return found
        raise RouteNotFoundError(f"No key with id {key_id!r}.")

    def audit(principal: Principal, action: str, **details: Any) -> None:
        if record is not None:
            record(principal, action, details)

    async def create(request: Request) -> Response:
        principal = await admin(request)
        spec = KeySpec.model_validate(await read_json(request, ADMIN_BODY_LIMIT))
        if not _may_manage(principal, spec.tenant):
            raise PermissionDeniedError("An admin creates keys for its own tenant only.")
        key, created = keys.create(spec)
        audit(principal, "keys.create", key_id=created.id, tenant=created.tenant)
        return json_response({"key": key, **public_view(created)}, 201)

    async def listing(request: Request) -> Response:
        principal = await admin(request)
        mine = [public_view(r) for r in keys.records() if _may_manage(principal, r.tenant)]
        return json_response({"object": "list", "data": mine})

    def acting(
        action: str, apply: Callable[[str], Any]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            principal = await admin(request)
            key_id = owned(principal, request.path_params["key_id"]).id
            result = apply(key_id)
            audit(principal, f"keys.{action}", key_id=key_id)
            if isinstance(result, tuple):
                key, new = result
                return json_response({"key": key, **public_view(new)})
            return json_response(public_view(result))

        return handler

    return [
        Route("/v1/admin/keys", create, methods=["POST"]),
        Route("/v1/admin/keys", listing, methods=["GET"]),
        Route("/v1/admin/keys/{key_id}/revoke", acting("revoke", keys.revoke), methods=["POST"]),
        Route("/v1/admin/keys/{key_id}/rotate", acting("rotate", keys.rotate), methods=["POST"]),
    ]
