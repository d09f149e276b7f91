"""I7 rights only shrink, through a real gateway process and the ``enclave`` CLI.

Attacker 5: an admin of one tenant, holding a key limited in models, collections,
rates and lifetime, tries to mint or rotate a key beyond its own rights, to bring
a revoked key back by rotating it, or to crash key creation with an absurd
lifetime. Every attempt is refused with a clear 4xx, nothing is created, and every
admin call — listings and refusals included — leaves an audit record.

The gateway's one deployment points at a closed port: no model is needed here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, Server, deployment, enclave_cli, gateway_env, start
from tests.openapi import validate

LIMITED = {
    "tenant": "acme",
    "role": "admin",
    "models": ["m1"],
    "collections": ["handbook"],
    "rpm": 10,
    "tpm": 1000,
    "daily_tokens": 5000,
    "expires": "1d",
}
WITHIN = {
    "tenant": "acme",
    "role": "member",
    "models": ["m1"],
    "collections": ["handbook"],
    "rpm": 10,
    "tpm": 1000,
    "daily_tokens": 5000,
    "expires": "23h",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rights-data")


@pytest.fixture(scope="module")
def gateway(data: Path, log_dir: Path) -> Iterator[Server]:
    env = gateway_env(
        [deployment("d1", "http://127.0.0.1:9", model="m1")],
        ENCLAVE_DATA_DIR=str(data),
        ENCLAVE_GATEWAY_KEY_RELOAD_S="0.05",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


def admin_call(gateway: Server, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.request(method, f"{gateway.url}/v1/admin/keys{path}", headers=headers, **kw)


def made(gateway: Server, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    response = admin_call(gateway, key, "POST", "", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def key_ids(gateway: Server) -> set[str]:
    listed = admin_call(gateway, API_KEY, "GET", "")
    return {k["id"] for k in listed.json()["data"]}


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    validate("ErrorResponse", response.json())
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    ("field", "wider"),
    [
        ("models", None),
        ("models", ["m1", "m2"]),
        ("collections", None),
        ("collections", ["handbook", "payroll"]),
        ("rpm", None),
        ("rpm", 11),
        ("tpm", None),
        ("tpm", 1001),
        ("daily_tokens", None),
        ("daily_tokens", 5001),
        ("expires", None),
        ("expires", "2d"),
    ],
)
def test_a_limited_admin_cannot_create_a_wider_key(gateway: Server, field: str, wider: Any) -> None:
    admin = made(gateway, API_KEY, LIMITED)["key"]
    before = key_ids(gateway)
    spec = {**WITHIN, field: wider}
    error = refused(admin_call(gateway, admin, "POST", "", json=spec), 403)
    assert error["type"] == "permission_error"
    assert error["param"] == field
    assert key_ids(gateway) == before  # nothing was created
    assert made(gateway, admin, WITHIN)["tenant"] == "acme"  # the same spec, within: fine


def test_a_limited_admin_cannot_rotate_a_wider_key_into_its_hands(gateway: Server) -> None:
    admin = made(gateway, API_KEY, LIMITED)["key"]
    wide = made(gateway, API_KEY, {"tenant": "acme", "role": "admin"})
    error = refused(admin_call(gateway, admin, "POST", f"/{wide['id']}/rotate"), 403)
    assert error["type"] == "permission_error"
    still = httpx.get(
        f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {wide['key']}"}
    )
    assert still.status_code == 200  # the refused rotation revoked nothing
    narrow = made(gateway, admin, WITHIN)
    rotated = admin_call(gateway, admin, "POST", f"/{narrow['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["models"] == ["m1"]


def test_a_revoked_key_is_not_rotated_back_to_life(gateway: Server) -> None:
    member = made(gateway, API_KEY, {"tenant": "acme"})
    assert admin_call(gateway, API_KEY, "POST", f"/{member['id']}/revoke").status_code == 200
    before = key_ids(gateway)
    error = refused(admin_call(gateway, API_KEY, "POST", f"/{member['id']}/rotate"), 409)
    assert (error["type"], error["code"]) == ("invalid_request_error", "key_revoked")
    assert key_ids(gateway) == before


@pytest.mark.parametrize("lifetime", ["99999999d", "999999999h", "0d", "1y", "-1d", "30"])
def test_an_impossible_lifetime_is_400(gateway: Server, lifetime: str) -> None:
    spec = {"tenant": "acme", "expires": lifetime}
    error = refused(admin_call(gateway, API_KEY, "POST", "", json=spec), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", "expires")


def test_the_cli_refuses_an_impossible_lifetime_and_a_revoked_rotation(tmp_path: Path) -> None:
    absurd = enclave_cli(tmp_path, "keys", "create", "--tenant", "acme", "--expires", "99999999d")
    assert absurd.returncode == 2
    assert (
        absurd.stderr.startswith("enclave: Invalid duration") and "Traceback" not in absurd.stderr
    )
    bad_tenant = enclave_cli(tmp_path, "keys", "create", "--tenant", "acme corp!")
    assert bad_tenant.returncode == 2 and "Traceback" not in bad_tenant.stderr
    assert enclave_cli(tmp_path, "keys", "create", "--tenant", "acme").returncode == 0
    key_id = json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)[0]["id"]
    assert enclave_cli(tmp_path, "keys", "revoke", key_id).returncode == 0
    again = enclave_cli(tmp_path, "keys", "rotate", key_id)
    assert again.returncode == 2 and "revoked" in again.stderr and "Traceback" not in again.stderr
    assert len(json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)) == 1


def test_listings_and_refused_admin_calls_are_audited(tmp_path: Path, log_dir: Path) -> None:
    env = gateway_env([deployment("d1", "http://127.0.0.1:9", model="m1")])
    gateway = start("gateway", {**env, "ENCLAVE_DATA_DIR": str(tmp_path)}, log_dir)
    try:
        member = made(gateway, API_KEY, {"tenant": "acme"})
        assert admin_call(gateway, API_KEY, "GET", "").status_code == 200
        refused(admin_call(gateway, "sk-wrong", "GET", ""), 401)
        refused(admin_call(gateway, member["key"], "POST", "", json={"tenant": "acme"}), 403)
        refused(
            admin_call(gateway, API_KEY, "POST", "", json={"tenant": "x", "expires": "9y"}), 400
        )
    finally:
        gateway.stop()  # drains the audit queue
    files = sorted((tmp_path / "audit").rglob("*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    actions = [(r["action"], r["principal"]) for r in records if r["kind"] == "admin"]
    boot = actions[0][1]
    assert boot.startswith("bootstrap-")
    assert actions == [("keys.create", boot), ("keys.list", boot)]
    refusals = [r for r in records if r.get("route", "").startswith("/v1/admin/")]
    assert sorted((r["status"], r["principal"] or "") for r in refusals) == sorted(
        [(401, ""), (403, member["id"]), (400, boot)]
    )
    assert all(r["error"] and r["route"] == "/v1/admin/keys" for r in refusals)
