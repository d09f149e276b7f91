"""Rate limits and the audit log on a real gateway process (and two, for the shared limit)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import Server, create_key, deployment, enclave_cli, start

MESSAGE = {"role": "user", "content": "my phone is 13812345678, say hi"}


def gateway_for(data: Path, node: Server, log_dir: Path, **extra: str) -> Server:
    env = {
        "ENCLAVE_DATA_DIR": str(data),
        "ENCLAVE_GATEWAY_DEPLOYMENTS": json.dumps([deployment("local", node)]),
        "ENCLAVE_GATEWAY_RATE_LIMIT": json.dumps({"backend": "file"}),
        **extra,
    }
    return start("gateway", env, log_dir)


def ask(gateway: Server, key: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        timeout=60,
        headers={"authorization": f"Bearer {key}"},
        json={"model": "smollm2", "max_tokens": 1, "messages": [MESSAGE]},
    )


def test_limits_hold_across_two_gateway_processes(
    tmp_path: Path, node: Server, log_dir: Path
) -> None:
    key = create_key(tmp_path, "acme", "--rpm", "4")
    first, second = gateway_for(tmp_path, node, log_dir), gateway_for(tmp_path, node, log_dir)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: ask((first, second)[i % 2], key), range(12)))
    finally:
        first.stop()
        second.stop()
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) == 4 and len(refused) == 8  # the refill in a few seconds is < 1
    assert admitted[0].headers["x-ratelimit-limit-requests"] == "4"
    assert int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].json()["error"]["code"] == "rate_limit_exceeded"


def test_every_request_is_audited_and_verify_catches_an_edit(
    tmp_path: Path, node: Server, log_dir: Path
) -> None:
    key = create_key(tmp_path, "acme")
    gateway = gateway_for(tmp_path, node, log_dir)
    try:
        assert ask(gateway, key).status_code == 200
        assert ask(gateway, "sk-wrong").status_code == 401
        admin = httpx.post(
            f"{gateway.url}/v1/admin/keys",
            json={"tenant": "acme"},
            headers={"authorization": f"Bearer {key}"},
        )
        assert admin.status_code == 403
    finally:
        gateway.stop()  # drains the audit queue
    files = sorted((tmp_path / "audit").rglob("*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    statuses = sorted(r["status"] for r in records if r["kind"] == "request")
    assert statuses == [200, 401, 403]  # the refused admin attempt is on record too
    answered = next(r for r in records if r["status"] == 200)
    assert answered["tenant"] == "acme" and answered["tokens_out"] == 1
    assert answered["decisions"]["filter"] == "mask" and answered["deployment"] == "local"
    assert "13812345678" not in "".join(f.read_text() for f in files)  # no content by default

    assert enclave_cli(tmp_path, "audit", "verify").returncode == 0
    tampered = files[0].read_text().replace('"tokens_out":1', '"tokens_out":0')
    files[0].write_text(tampered)
    checked = enclave_cli(tmp_path, "audit", "verify")
    assert checked.returncode == 1 and "edited" in checked.stdout
