"""Admin endpoints and RBAC through the gateway app, in process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware

from functions.admin import admin_routes
from functions.audit.local import RequestAudit
from functions.auth import make_authenticate
from functions.context import Principal
from functions.edge import Edge
from functions.gateway import create_app
from functions.keys import KeySpec, KeyStore, LocalKeys
from functions.settings import Deployment, GatewaySettings, Settings
from tests.openapi import validate

BOOT = "sk-boot-" + "b" * 24
UNREACHABLE = "http://127.0.0.1:9/v1"


def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        gateway=GatewaySettings(
            api_keys=[BOOT],
            deployments=[
                Deployment(name="d1", model="m1", api_base=UNREACHABLE),
                Deployment(name="d2", model="m2", api_base=UNREACHABLE),
            ],
            key_reload_s=0.01,
            cold_wait_s=0,
        ),
    )


def run(tmp_path: Path, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    app = create_app(settings(tmp_path))

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await scenario(client)

    return asyncio.run(main())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_admin_lifecycle_and_member_rights(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> None:
        made = await gw.post(
            "/v1/admin/keys",
            headers=bearer(BOOT),
            json={"tenant": "acme", "role": "member", "models": ["m1"]},
        )
        assert made.status_code == 201, made.text
        member, key_id = made.json()["key"], made.json()["id"]
        assert "digest" not in made.json()

        models = (await gw.get("/v1/models", headers=bearer(member))).json()
        assert [m["id"] for m in models["data"]] == ["m1"]
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        denied = await gw.post(
            "/v1/chat/completions", headers=bearer(member), json={**chat, "model": "m2"}
        )
        assert denied.status_code == 403
        validate("ErrorResponse", denied.json())
        allowed = await gw.post(
            "/v1/chat/completions", headers=bearer(member), json={**chat, "model": "m1"}
        )
        assert allowed.status_code == 503  # authorised; the deployment itself is down

        assert (await gw.get("/v1/admin/keys", headers=bearer(member))).status_code == 403
        listed = (await gw.get("/v1/admin/keys", headers=bearer(BOOT))).json()["data"]
        assert [k["id"] for k in listed] == [key_id]

        rotated = await gw.post(f"/v1/admin/keys/{key_id}/rotate", headers=bearer(BOOT))
        new_key = rotated.json()["key"]
        assert (await gw.get("/v1/models", headers=bearer(member))).status_code == 401
        assert (await gw.get("/v1/models", headers=bearer(new_key))).status_code == 200
        revoked = await gw.post(
            f"/v1/admin/keys/{rotated.json()['id']}/revoke", headers=bearer(BOOT)
        )
        assert revoked.json()["revoked_at"] is not None
        assert (await gw.get("/v1/models", headers=bearer(new_key))).status_code == 401

    run(tmp_path, scenario)


def test_a_tenant_admin_manages_only_its_tenant(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> None:
        admin = (
            await gw.post(
                "/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "acme", "role": "admin"}
            )
        ).json()["key"]
        other = (
            await gw.post("/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "globex"})
        ).json()["id"]
        refused = await gw.post("/v1/admin/keys", headers=bearer(admin), json={"tenant": "globex"})
        assert refused.status_code == 403
        hidden = await gw.post(f"/v1/admin/keys/{other}/revoke", headers=bearer(admin))
        assert hidden.status_code == 404
        mine = (await gw.get("/v1/admin/keys", headers=bearer(admin))).json()["data"]
        assert {k["tenant"] for k in mine} == {"acme"}

    run(tmp_path, scenario)


def test_frontend_keys_are_made_by_admins_and_never_widen(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> None:
        frontend_spec = {"tenant": "acme", "trust_user_headers": True, "user_rpm": 10}
        made = await gw.post("/v1/admin/keys", headers=bearer(BOOT), json=frontend_spec)
        assert made.status_code == 201, made.text
        assert (made.json()["trust_user_headers"], made.json()["user_rpm"]) == (True, 10)
        admin = (
            await gw.post(
                "/v1/admin/keys",
                headers=bearer(BOOT),
                json={"tenant": "acme", "role": "admin", "user_rpm": 10},
            )
        ).json()["key"]
        # a limited admin makes frontend keys, but none with a looser per-user limit
        ok = await gw.post("/v1/admin/keys", headers=bearer(admin), json=frontend_spec)
        assert ok.status_code == 201, ok.text
        wider = {**frontend_spec, "user_rpm": 11}
        refused = await gw.post("/v1/admin/keys", headers=bearer(admin), json=wider)
        assert refused.status_code == 403 and refused.json()["error"]["param"] == "user_rpm"
        bad = await gw.post(
            "/v1/admin/keys", headers=bearer(BOOT), json={**frontend_spec, "user_rpm": 0}
        )
        assert bad.status_code == 400

    run(tmp_path, scenario)


def test_members_may_not_read_metrics_or_health_details(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> list[int]:
        made = await gw.post("/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "acme"})
        member = made.json()["key"]
        auditor = (
            await gw.post(
                "/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "acme", "role": "auditor"}
            )
        ).json()["key"]
        return [
            (await gw.get("/metrics", headers=bearer(member))).status_code,
            (await gw.get("/health", headers=bearer(member))).status_code,
            (await gw.get("/metrics", headers=bearer(auditor))).status_code,
        ]

    assert run(tmp_path, scenario) == [403, 403, 200]


def test_an_auditor_may_not_chat(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> None:
        auditor = (
            await gw.post(
                "/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "acme", "role": "auditor"}
            )
        ).json()["key"]
        answer = await gw.post(
            "/v1/chat/completions",
            headers=bearer(auditor),
            json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 403
        assert (await gw.get("/v1/models", headers=bearer(auditor))).json()["data"] == []

    run(tmp_path, scenario)


def test_a_bad_key_spec_is_400(tmp_path: Path) -> None:
    async def scenario(gw: httpx.AsyncClient) -> httpx.Response:
        return await gw.post(
            "/v1/admin/keys", headers=bearer(BOOT), json={"tenant": "acme corp!", "role": "owner"}
        )

    response = run(tmp_path, scenario)
    assert response.status_code == 400
    validate("ErrorResponse", response.json())


class Recorded(RequestAudit):
    """The gateway's audit hook, keeping what it is given instead of writing a log."""

    def __init__(self) -> None:
        super().__init__(None)
        self.seen: list[tuple[str | None, str, Any]] = []

    def admin(self, principal: Principal, action: str, details: dict[str, Any]) -> None:
        self.seen.append((principal.key_id, action, details))

    def endpoint(self, principal: Principal | None, route: str, **fields: Any) -> None:
        self.seen.append((principal.key_id if principal else None, route, fields))

    async def admin_durable(
        self, principal: Principal, action: str, details: dict[str, Any]
    ) -> None:
        self.admin(principal, action, details)

    async def endpoint_durable(
        self, principal: Principal | None, route: str, **fields: Any
    ) -> None:
        self.endpoint(principal, route, **fields)


def test_every_admin_call_leaves_one_record_refusals_with_their_status(tmp_path: Path) -> None:
    keys = KeyStore(LocalKeys(tmp_path), b"p" * 32, reload_s=0.01)
    audit = Recorded()
    authenticate = make_authenticate(settings(tmp_path).gateway, keys)
    app = Starlette(routes=admin_routes(keys, authenticate, audit), middleware=[Middleware(Edge)])
    _, member = keys.create(KeySpec(tenant="acme"))
    one = f"/v1/admin/keys/{member.id}"

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as gw:
            calls = [
                gw.get("/v1/admin/keys", headers=bearer(BOOT)),
                gw.get("/v1/admin/keys", headers=bearer("sk-wrong")),
                gw.post(f"{one}/revoke"),
                gw.post("/v1/admin/keys/key_nope/rotate", headers=bearer(BOOT)),
                gw.post(f"{one}/revoke", headers=bearer(BOOT)),
                gw.post(f"{one}/rotate", headers=bearer(BOOT)),
            ]
            return [(await call).status_code for call in calls]

    assert asyncio.run(main()) == [200, 401, 401, 404, 200, 409]
    boot = audit.seen[0][0]
    assert boot is not None and boot.startswith("bootstrap-")
    assert [(who, what) for who, what, _ in audit.seen] == [
        (boot, "keys.list"),
        (None, "/v1/admin/keys"),
        (None, "/v1/admin/keys/{key_id}/revoke"),
        (boot, "/v1/admin/keys/{key_id}/rotate"),
        (boot, "keys.revoke"),
        (boot, "/v1/admin/keys/{key_id}/rotate"),
    ]
    assert audit.seen[0][2] == {"count": 1}
    refused = [fields for _, what, fields in audit.seen if what.startswith("/")]
    assert [f["status"] for f in refused] == [401, 401, 404, 409]
    assert all(f["error"] and f["decisions"]["admin"].startswith("keys.") for f in refused)
