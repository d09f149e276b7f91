"""Two real gateway processes write their audit chains to one bucket; ``enclave audit verify``
(the CLI, in a process of its own with only the storage settings) checks both.

The bucket is moto's S3 server on 127.0.0.1; the model is the echoing upstream
(:mod:`tests.e2e.echo_upstream`, a test double). Each gateway has its own, empty
data directory and keys from settings, as on a stateless container.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from functions.audit.bucket import LOGS
from functions.storage import S3Objects, StorageSettings
from functions.storage.objects import Blob
from tests.conftest import API_KEY, ROOT, Server, child_env, free_port, gateway_env, launch, start
from tests.s3 import storage_env

REQUESTS = 3  # per gateway


def audit_env() -> dict[str, str]:
    """Keys from settings: a gateway on a bucket generates none."""
    return {
        "ENCLAVE_AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
        "ENCLAVE_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "ECHO_RECORD": str(tmp_path / "echo.jsonl")}
    server = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, tmp_path, port)
    yield server
    server.stop()


@pytest.fixture
def gateways(
    echo: Server, s3_storage: StorageSettings, tmp_path: Path
) -> Iterator[tuple[list[Server], dict[str, str]]]:
    shared = {
        **storage_env(s3_storage),
        **audit_env(),
        "ENCLAVE_GATEWAY_KEY_PEPPER": secrets.token_urlsafe(32),
    }
    deployment = {"name": "echo", "model": "echo", "api_base": f"{echo.url}/v1"}
    env = gateway_env([deployment], ENCLAVE_GATEWAY_COLD_WAIT_S="0", **shared)
    servers: list[Server] = []
    try:
        for _ in range(2):
            servers.append(start("gateway", env, tmp_path, timeout=300))  # a loaded CI box
        yield servers, shared
    finally:
        for server in servers:
            server.stop()


def enclave_audit(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``enclave audit verify`` with the gateways' storage and keys, nothing else."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "audit", "verify"],
        env=child_env(**env, ENCLAVE_DATA_DIR=str(cwd / "verifier")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_gateways_chains_in_one_bucket_verify_and_an_edit_fails(
    gateways: tuple[list[Server], dict[str, str]], s3_storage: StorageSettings, tmp_path: Path
) -> None:
    servers, env = gateways
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}
    for server in servers:
        for _ in range(REQUESTS):
            answer = httpx.post(
                f"{server.url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {API_KEY}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
    for server in servers:
        server.stop()  # the last records and heads are written on the way out

    objects = S3Objects.from_settings(s3_storage).scoped("audit")
    chains = {key.split("/")[1] for key in objects.keys(LOGS)}
    assert len(chains) == 2
    for server in servers:  # nothing of the audit log on the gateways' disks
        data = tmp_path / f"data-gateway-{server.port}"
        assert not (data / "audit").exists() and not (data / "audit-keys").exists()

    checked = enclave_audit(env, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit verify: OK: 2 chain(s)" in checked.stdout

    keys = objects.keys(LOGS)
    edited, deleted = keys[0], keys[-1]  # one chain's first object, the other's last
    other = [k for k in keys if k.split("/")[1] == deleted.split("/")[1]]
    blob = objects.get(edited)
    assert isinstance(blob, Blob)
    first, rest = blob.data.split(b"\n", 1)
    record = orjson.loads(first)
    record["status"] = 500 if record["status"] != 500 else 200
    objects.put(edited, orjson.dumps(record) + b"\n" + rest)
    objects.delete(deleted)
    checked = enclave_audit(env, tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"edited        {edited} line 1 seq" in checked.stdout
    # caught against the other chain's signed head: a cut tail, or the whole chain gone
    assert ("truncated" if len(other) > 1 else "missing_chain") in checked.stdout


def test_a_gateway_on_a_bucket_without_audit_keys_refuses_to_start(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    deployment = {"name": "echo", "model": "echo", "api_base": f"http://127.0.0.1:{free_port()}/v1"}
    env = gateway_env([deployment], **storage_env(s3_storage))
    with pytest.raises(RuntimeError, match="ENCLAVE_AUDIT_HMAC_KEY"):
        start("gateway", env, tmp_path, timeout=300)  # it exits as soon as it has read them
