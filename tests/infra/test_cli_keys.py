"""`enclave keys …` as a user runs it, and a revocation reaching a running gateway."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.conftest import create_key, enclave_cli, start


def test_create_list_revoke_rotate(tmp_path: Path) -> None:
    made = enclave_cli(
        tmp_path,
        "keys",
        "create",
        "--tenant",
        "acme",
        "--role",
        "member",
        "--models",
        "smollm2",
        "--rpm",
        "30",
        "--expires",
        "30d",
        "--name",
        "alice",
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-enc-") and " " not in key
    listed = json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)
    assert listed[0]["tenant"] == "acme" and listed[0]["rpm"] == 30
    assert key not in enclave_cli(tmp_path, "keys", "list").stdout
    rotated = enclave_cli(tmp_path, "keys", "rotate", listed[0]["id"])
    assert rotated.stdout.strip().splitlines()[-1] not in {key, ""}
    missing = enclave_cli(tmp_path, "keys", "revoke", "key_missing")
    assert missing.returncode == 2 and "No key" in missing.stderr


def test_a_frontend_key_with_per_user_limits(tmp_path: Path) -> None:
    made = enclave_cli(
        tmp_path,
        "keys",
        "create",
        "--tenant",
        "acme",
        "--name",
        "open-webui",
        "--trust-user-headers",
        "--user-rpm",
        "20",
        "--user-daily-tokens",
        "50000",
    )
    assert made.returncode == 0, made.stderr
    assert "frontend" in made.stdout.splitlines()[0]
    listed = json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)[0]
    assert listed["trust_user_headers"] is True
    assert (listed["user_rpm"], listed["user_tpm"], listed["user_daily_tokens"]) == (
        20,
        None,
        50000,
    )
    plain = enclave_cli(tmp_path, "keys", "create", "--tenant", "acme")
    assert "frontend" not in plain.stdout
    assert (
        json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)[1]["trust_user_headers"]
        is False
    )


def test_a_revoked_key_stops_working_in_a_running_gateway(tmp_path: Path, log_dir: Path) -> None:
    key = create_key(tmp_path, "acme")
    gateway = start("gateway", {"ENCLAVE_DATA_DIR": str(tmp_path)}, log_dir)
    try:
        headers = {"authorization": f"Bearer {key}"}
        assert httpx.get(f"{gateway.url}/v1/models", headers=headers).status_code == 200
        key_id = json.loads(enclave_cli(tmp_path, "keys", "list", "--json").stdout)[0]["id"]
        enclave_cli(tmp_path, "keys", "revoke", key_id)
        revoked_at = time.monotonic()
        while httpx.get(f"{gateway.url}/v1/models", headers=headers).status_code == 200:
            assert time.monotonic() - revoked_at < 2.0, "revocation not enforced within 2 s"
            time.sleep(0.05)
    finally:
        gateway.stop()
