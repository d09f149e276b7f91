"""Admin function URLs: the key store over HTTP, for principals with ``keys:manage``.

    POST /v1/admin/keys                 create (body: KeySpec, e.g. with
                                        "trust_user_headers": true) → the key, shown once
    GET  /v1/admin/keys                 list (no key material, digests withheld)
    POST /v1/admin/keys/{id}/revoke     revoke
    POST /v1/admin/keys/{id}/rotate     new key, same policy; the old one revoked

An admin manages the keys of its own tenant; the bootstrap admin (tenant
``default``) manages every tenant's. Rights only shrink: a key that is created or
rotated must lie within the caller's own rights (:func:`functions.rbac.require_within`),
and a revoked key is never rotated back to life.

Every call leaves one audit record: an admin record of the action
(``keys.list``, ``keys.create``…) when it succeeded; when it was refused (401,
403, 400, 404, 409), a request record of the route with the status and the
reason — without a key, one that never takes an authenticated record's place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.audit.errors import AuditUnavailableError
from functions.audit.local import RequestAudit
from functions.auth import caller
from functions.context import Principal, Step
from functions.edge import json_response, read_json
from functions.errors import PermissionDeniedError, map_exception
from functions.keys import KeyRecord, KeySpec, KeyStore

ADMIN_BODY_LIMIT = 16_384

# what an admin route does once its caller is known: the answer and the audit details
Operation = Callable[[Request, Principal], Awaitable[tuple[Response, dict[str, Any]]]]


def public_view(record: KeyRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude={"digest"})


def _may_manage(principal: Principal, tenant: str) -> bool:
    return principal.key_id.startswith("bootstrap-") or principal.tenant == tenant


def rights_of(record: KeyRecord) -> rbac.Rights:
    return rbac.Rights(
        role=record.role,
        models=record.models,
        collections=record.collections,
        rpm=record.rpm,
        tpm=record.tpm,
        daily_tokens=record.daily_tokens,
        expires_at=record.expires_at,
        trust_user_headers=record.trust_user_headers,
        user_rpm=record.user_rpm,
        user_tpm=record.user_tpm,
        user_daily_tokens=record.user_daily_tokens,
    )


def admin_routes(
    keys: KeyStore, authenticate: Step, audit: RequestAudit | None = None
) -> list[Route]:
    recorder = audit if audit is not None else RequestAudit(None)  # None: records nothing

    def granter(principal: Principal) -> rbac.Rights:
        """The caller's own rights; a stored key's lifetime comes from its record."""
        own = keys.known(principal.key_id)  # the view that just authenticated it
        users = principal.user_limits
        return rbac.Rights(
            role=principal.role,
            models=principal.models,
            collections=principal.collections,
            rpm=principal.rpm,
            tpm=principal.tpm,
            daily_tokens=principal.daily_tokens,
            expires_at=own.expires_at if own is not None else None,
            trust_user_headers=principal.trust_user_headers,
            user_rpm=users.rpm if users is not None else None,
            user_tpm=users.tpm if users is not None else None,
            user_daily_tokens=users.daily_tokens if users is not None else None,
        )

    def within(principal: Principal) -> Callable[[KeyRecord], None]:
        mine = granter(principal)
        return lambda granted: rbac.require_within(mine, rights_of(granted))

    def visible(principal: Principal) -> Callable[[KeyRecord], bool]:
        return lambda record: _may_manage(principal, record.tenant)

    def audited(
        route: str, action: str, operate: Operation
    ) -> Callable[[Request], Awaitable[Response]]:
        return audited_operation(
            authenticate, recorder, route, f"keys.{action}", rbac.MANAGE_KEYS, operate
        )

    async def create(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        spec = KeySpec.model_validate(await read_json(request, ADMIN_BODY_LIMIT))
        if not _may_manage(principal, spec.tenant):
            raise PermissionDeniedError("An admin creates keys for its own tenant only.")
        # store writes block (a file fsynced, a bucket's round trips): never on the loop
        key, created = await asyncio.to_thread(keys.create, spec, within(principal))
        answer = json_response({"key": key, **public_view(created)}, 201)
        return answer, {"key_id": created.id, "tenant": created.tenant}

    async def listing(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        stored = await asyncio.to_thread(keys.records)
        mine = [public_view(r) for r in stored if _may_manage(principal, r.tenant)]
        return json_response({"object": "list", "data": mine}), {"count": len(mine)}

    async def revoke(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        key_id = request.path_params["key_id"]
        revoked = await asyncio.to_thread(keys.revoke, key_id, visible(principal))
        return json_response(public_view(revoked)), {"key_id": key_id}

    async def rotate(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        key_id = request.path_params["key_id"]
        key, new = await asyncio.to_thread(
            keys.rotate, key_id, within(principal), visible(principal)
        )
        answer = json_response({"key": key, **public_view(new)})
        return answer, {"key_id": key_id, "new_key_id": new.id}

    keys_route, one_key = "/v1/admin/keys", "/v1/admin/keys/{key_id}"
    create_key = audited(keys_route, "create", create)
    list_keys = audited(keys_route, "list", listing)
    return [
        Route(keys_route, _by_method(post=create_key, get=list_keys), methods=["GET", "POST"]),
        Route(
            f"{one_key}/revoke",
            audited(f"{one_key}/revoke", "revoke", revoke),
            methods=["POST"],
        ),
        Route(
            f"{one_key}/rotate",
            audited(f"{one_key}/rotate", "rotate", rotate),
            methods=["POST"],
        ),
    ]


def audited_operation(
    authenticate: Step,
    recorder: RequestAudit,
    route: str,
    action: str,
    permission: str,
    operate: Operation,
) -> Callable[[Request], Awaitable[Response]]:
    """An operator's route: the caller authenticated and authorised for ``permission``,
    then one audit record: the ``action`` with its details, or the refusal and why."""

    async def handler(request: Request) -> Response:
        started = time.perf_counter()
        principal: Principal | None = None
        try:
            principal = await caller(authenticate, request)
            rbac.require(principal, permission)
            response, details = await operate(request, principal)
        except (Exception, asyncio.CancelledError) as exc:
            error = map_exception(exc) if isinstance(exc, Exception) else None
            with suppress(AuditUnavailableError):  # the refusal's own error stands
                await recorder.endpoint_durable(
                    principal,
                    route,
                    status=error.status_code if error else 499,
                    latency_s=time.perf_counter() - started,
                    error=error.message if error else "The client closed the request.",
                    decisions={"admin": action},
                )
            raise
        await recorder.admin_durable(principal, action, details)  # before the answer leaves
        return response

    return handler


def _by_method(
    *, post: Callable[[Request], Awaitable[Response]], get: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """One route for both methods of a path, so a 405 there lists both in ``Allow``."""

    async def endpoint(request: Request) -> Response:
        return await (post if request.method == "POST" else get)(request)

    return endpoint
