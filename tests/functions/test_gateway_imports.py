"""A gateway starts without what only some requests need: litellm, LanceDB, pyarrow, redis.

Checked in a fresh interpreter, so nothing another test imported can hide a leak:
the app is built from Settings, its lifespan started, and one chat answered by a
real (recording) upstream; then ``sys.modules`` is read. litellm comes in only
with a deployment that needs its translation, and then without blocking the first
request; LanceDB only with the first retrieval (tests/e2e/test_knowledge.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import Recorder, rec

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-" + "i" * 24
# what a relayed chat never needs: translation (litellm and the openai SDK it brings),
# the vector store and its columnar format; redis-py (only a shared cache or limiter),
# BeautifulSoup (only an HTML upload), PyJWT (only with an OIDC issuer), httpcore (the
# relay, probes and look-ups all run on aiohttp's pool), httpx's command-line client with
# rich and pygments (every Enclave process imports ``infra`` first, which keeps it out)
HEAVY = [
    "litellm",
    "openai",
    "lancedb",
    "pyarrow",
    "functions.knowledge.store",
    "redis",
    "bs4",
    "jwt",
    "httpcore",
    "httpx._main",
    "rich",
    "pygments",
]

SCRIPT = """
import asyncio, json, sys
from pathlib import Path

import infra  # as the enclave command and the Modal app do, before anything else
import httpx

from functions.gateway import create_app
from functions.settings import Deployment, GatewaySettings, Settings

key, data, deployments, model = json.loads(sys.argv[1])
settings = Settings(
    data_dir=Path(data),
    gateway=GatewaySettings(api_keys=[key], deployments=[Deployment(**d) for d in deployments]),
)


async def main() -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            answer = await client.post(
                "/v1/chat/completions", json=body, headers={"authorization": "Bearer " + key}
            )
    return answer.status_code


status = asyncio.run(main())  # what was imported (a None entry is an import refused)
print(json.dumps({"status": status, "modules": sorted(k for k, v in sys.modules.items() if v)}))
"""


def _chat_in_fresh_gateway(
    tmp_path: Path, deployments: list[dict[str, Any]], model: str
) -> tuple[int, set[str]]:
    argv = json.dumps([KEY, str(tmp_path), deployments, model])
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return out["status"], set(out["modules"])


def test_a_relayed_chat_loads_no_translation_and_no_vector_store(
    rec_upstream: Recorder, tmp_path: Path
) -> None:
    deployments = [rec("relay", "m1", rec_upstream.url)]
    status, modules = _chat_in_fresh_gateway(tmp_path, deployments, "m1")
    assert status == 200
    assert "functions.gateway" in modules  # the check itself ran in the gateway
    assert [name for name in HEAVY if name in modules] == []


@pytest.mark.parametrize(
    "extra", [{"via": "litellm"}, {"provider": "hosted_vllm"}], ids=["via", "provider"]
)
def test_a_translated_deployment_loads_litellm_and_answers(
    rec_upstream: Recorder, tmp_path: Path, extra: dict[str, str]
) -> None:
    deployments = [rec("relay", "m1", rec_upstream.url), rec("t", "m2", rec_upstream.url, **extra)]
    status, modules = _chat_in_fresh_gateway(tmp_path, deployments, "m2")
    assert status == 200
    assert "litellm" in modules
    assert "lancedb" not in modules


def test_preload_imports_what_a_memory_snapshot_should_hold() -> None:
    """Modal calls ``preload`` before its snapshot (infra/modal_app.py): restores get
    litellm and LanceDB without importing them."""
    code = (
        "import json, sys; from functions.gateway import preload; preload(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"litellm", "lancedb", "functions.knowledge.base"} <= modules
