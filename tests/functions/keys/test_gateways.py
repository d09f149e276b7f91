"""Two gateway processes with their own empty data directories, sharing only a bucket
(moto's S3 server): a key made through one works through the other, its revocation
reaches the other within 2 s, concurrent creations through both all survive, the CLI
works on the same bucket, and the key store writes nothing to the gateways' disks."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from functions.storage import StorageSettings
from tests.conftest import API_KEY, Server, enclave_cli, start
from tests.s3 import BUCKET_SECRETS, new_bucket, storage_env

PEPPER = BUCKET_SECRETS["ENCLAVE_GATEWAY_KEY_PEPPER"]
BOOT = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def bucket(s3_server: str) -> StorageSettings:
    return new_bucket(s3_server, "enclave-keys-gateways")


def shared_env(storage: StorageSettings) -> dict[str, str]:
    return {**storage_env(storage), **BUCKET_SECRETS}


@pytest.fixture(scope="module")
def gateways(bucket: StorageSettings, log_dir: Path) -> Iterator[tuple[Server, Server]]:
    env = {**shared_env(bucket), "ENCLAVE_GATEWAY_API_KEYS": json.dumps([API_KEY])}
    with ThreadPoolExecutor(2) as pool:  # a gateway takes a minute to start on a busy VM
        a, b = pool.map(lambda _: start("gateway", env, log_dir, timeout=300), range(2))
    yield a, b
    a.stop()
    b.stop()


def create(gateway: Server, tenant: str = "acme") -> tuple[str, str]:
    made = httpx.post(
        f"{gateway.url}/v1/admin/keys", headers=BOOT, json={"tenant": tenant}, timeout=30
    )
    assert made.status_code == 201, made.text
    return made.json()["key"], made.json()["id"]


def status_with(gateway: Server, key: str) -> int:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.get(f"{gateway.url}/v1/models", headers=headers, timeout=30).status_code


def within_2_s(gateway: Server, key: str, status: int) -> None:
    started = time.monotonic()
    while status_with(gateway, key) != status:
        assert time.monotonic() - started < 2.0, f"not {status} within 2 s"
        time.sleep(0.05)


def test_a_key_and_its_revocation_reach_the_other_gateway(gateways: tuple[Server, Server]) -> None:
    a, b = gateways
    key, key_id = create(a)
    within_2_s(b, key, 200)
    revoked = httpx.post(f"{a.url}/v1/admin/keys/{key_id}/revoke", headers=BOOT, timeout=30)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert status_with(a, key) == 401  # the writer at once
    within_2_s(b, key, 401)


def test_keys_made_at_once_through_both_gateways_all_survive(
    gateways: tuple[Server, Server],
) -> None:
    a, b = gateways
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: create((a, b)[i % 2], "burst")[1], range(16)))
    for gateway in (a, b):  # a listing reads the bucket through
        listed = httpx.get(f"{gateway.url}/v1/admin/keys", headers=BOOT, timeout=30).json()
        assert set(made) <= {k["id"] for k in listed["data"]}


def test_the_key_store_writes_nothing_to_a_gateway_s_disk(
    gateways: tuple[Server, Server], log_dir: Path
) -> None:
    create(gateways[0])
    for gateway in gateways:
        data = log_dir / f"data-gateway-{gateway.port}"
        assert not [p for p in data.rglob("*") if p.name.startswith("key")]
        detail = httpx.get(f"{gateway.url}/health", headers=BOOT, timeout=30).json()
        assert detail["keys"]["backend"] == "s3" and detail["keys"]["fresh"]


def cli(
    storage: StorageSettings, data: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return enclave_cli(data, "keys", *args, **storage_env(storage), **extra)


def test_the_cli_manages_the_bucket_s_keys(
    gateways: tuple[Server, Server], bucket: StorageSettings, tmp_path: Path
) -> None:
    data = tmp_path / "cli-data"
    made = cli(bucket, data, "create", "--tenant", "cli", ENCLAVE_GATEWAY_KEY_PEPPER=PEPPER)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert status_with(gateways[1], key) == 200  # an unknown key waits for a fresh view
    assert not data.exists()
    refused = cli(bucket, data, "list")
    assert refused.returncode == 2 and "ENCLAVE_GATEWAY_KEY_PEPPER" in refused.stderr
