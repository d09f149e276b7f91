"""Citations a frontend shows, through a real gateway and knowledge base with the SDK.

The model is the echoing upstream (a test double: it answers with the question), so
what the answer carries besides it is the gateway's doing. Documents are ingested
from a temporary folder outside the working directory: its path must never reach a
client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, Server, enclave_cli, free_port, gateway_env, launch, start

TRAVEL = "# Travel policy\n\nHotel costs are capped at 180 euros per night.\n"
ESCALATION = "# Escalate to ops-lead@example.com\n\nOutages go to the on-call lead at once.\n"
HOTEL = "How much can a hotel cost per night?"
RECORDS: dict[str, Path] = {}  # each gateway's echo: the request bodies the model received


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[tuple[Server, Path]]:
    data = tmp_path_factory.mktemp("data")
    docs = tmp_path_factory.mktemp("secret-server-folder") / "handbook"
    docs.mkdir()
    (docs / "travel.md").write_text(TRAVEL)
    (docs / "escalation.md").write_text(ESCALATION)
    done = enclave_cli(data, "ingest", str(docs), "--collection", "handbook")  # cwd: the repo
    assert done.returncode == 0, done.stderr
    record = tmp_path_factory.mktemp("echo") / "requests.jsonl"
    record.touch()
    port = free_port()
    env = {**os.environ, "ECHO_RECORD": str(record)}
    echo = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, log_dir, port)
    aliases = {
        "handbook-chat": {"model": "echo", "collections": ["handbook"]},  # default: both
        "handbook-md": {"model": "echo", "collections": ["handbook"], "citations": "markdown"},
    }
    # "echo-small" says its context is 700 tokens: the echo has no /v1/models to ask
    aliases["handbook-small"] = {"model": "echo-small", "collections": ["handbook"]}
    deployments = [
        {"name": "echo", "model": "echo", "api_base": f"{echo.url}/v1"},
        {
            "name": "echo-small",
            "model": "echo-small",
            "api_base": f"{echo.url}/v1",
            "upstream_model": "echo",
            "context_tokens": 700,
        },
    ]
    env = gateway_env(
        deployments, ENCLAVE_DATA_DIR=str(data), ENCLAVE_GATEWAY_ALIASES=json.dumps(aliases)
    )
    gateway = start("gateway", env, log_dir)
    RECORDS[gateway.url] = record
    yield gateway, docs.parent
    gateway.stop()
    echo.stop()


def sdk(gateway: Server) -> OpenAI:
    return OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def ask(gateway: Server, model: str, stream: bool, **enclave: Any) -> tuple[str, bytes]:
    """The answer's text as the SDK reads it, and the response's raw bytes."""
    extra = {"enclave": enclave} if enclave else None
    messages: Any = [{"role": "user", "content": HOTEL}]
    with sdk(gateway) as client:
        if not stream:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, extra_body=extra
            )
            return raw.parse().choices[0].message.content or "", raw.http_response.content
        with client.chat.completions.with_streaming_response.create(
            model=model, messages=messages, stream=True, extra_body=extra
        ) as response:
            body = response.http_response.read()
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line[6:8] == '{"']
    text = "".join((e["choices"] or [{}])[0].get("delta", {}).get("content") or "" for e in events)
    return text, body


def sources(text: str) -> str:
    assert text.count("\n\n---\nSources:\n") == 1, text
    return text.split("\n\n---\nSources:\n")[1]


@pytest.mark.parametrize("stream", [False, True])
def test_an_alias_shows_both_the_field_and_the_sources_block(
    kb: tuple[Server, Path], stream: bool
) -> None:
    gateway, folder = kb
    text, body = ask(gateway, "handbook-chat", stream)
    assert text.startswith(HOTEL)  # the model's answer first, then the block
    block = sources(text)
    assert "[1] Travel policy (handbook/travel.md)" in block.splitlines()
    assert b'"citations"' in body and b'"source":"handbook/travel.md"' in body
    assert str(folder).encode() not in body and b"secret-server-folder" not in body


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_picks_markdown_or_the_field(kb: tuple[Server, Path], stream: bool) -> None:
    gateway, folder = kb
    text, body = ask(gateway, "handbook-chat", stream, citations="field")
    assert "Sources:" not in text and b'"citations"' in body
    text, body = ask(gateway, "handbook-md", stream)
    assert sources(text) and b'"citations"' not in body
    text, body = ask(gateway, "echo", stream, collections=["handbook"], citations="markdown")
    assert "(handbook/travel.md)" in sources(text) and b'"citations"' not in body
    text, body = ask(gateway, "echo", stream, collections=["handbook"])  # the API's default
    assert "Sources:" not in text and b'"citations"' in body
    assert str(folder).encode() not in body


def test_the_last_chunks_are_the_sources_then_the_finish(kb: tuple[Server, Path]) -> None:
    gateway, _ = kb
    with sdk(gateway) as client:
        chunks = list(
            client.chat.completions.create(
                model="handbook-md",
                messages=[{"role": "user", "content": HOTEL}],
                stream=True,
            )
        )
    *_, block, finish = chunks
    assert "Sources:" in (block.choices[0].delta.content or "")
    assert block.choices[0].finish_reason is None
    assert finish.choices[0].finish_reason == "stop" and not finish.choices[0].delta.content


def test_a_title_with_personal_data_is_masked_in_the_sources(kb: tuple[Server, Path]) -> None:
    gateway, _ = kb
    for stream in (False, True):
        text, body = ask(gateway, "handbook-chat", stream)
        assert "(handbook/escalation.md)" in sources(text)
        assert b"ops-lead@example.com" not in body and "REDACTED:EMAIL" in sources(text)


def test_an_unknown_citation_style_is_a_400(kb: tuple[Server, Path]) -> None:
    gateway, _ = kb
    with sdk(gateway) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="handbook-chat",
            messages=[{"role": "user", "content": HOTEL}],
            extra_body={"enclave": {"citations": "html"}},
        )
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "enclave.citations"  # type: ignore[index]


def test_a_cached_answer_is_replayed_with_one_sources_block(kb: tuple[Server, Path]) -> None:
    gateway, _ = kb
    payload = {
        "model": "handbook-chat",
        "messages": [{"role": "user", "content": "Hotel price cap, please?"}],
        "temperature": 0,
    }
    auth = {"authorization": f"Bearer {API_KEY}"}
    url = f"{gateway.url}/v1/chat/completions"
    seen = []
    for stream in (False, False, True):
        response = httpx.post(url, json={**payload, "stream": stream}, headers=auth, timeout=60)
        assert response.status_code == 200, response.text
        seen.append(response.headers["x-enclave-cache"])
        assert response.text.count("Sources:") == 1
    assert seen == ["miss", "hit", "hit"]


def test_retrieve_names_documents_without_the_server_path(kb: tuple[Server, Path]) -> None:
    gateway, folder = kb
    response = httpx.post(
        f"{gateway.url}/v1/retrieve",
        headers={"authorization": f"Bearer {API_KEY}"},
        json={"query": "hotel", "collections": ["handbook"]},
        timeout=60,
    )
    assert response.status_code == 200
    assert {p["source"] for p in response.json()["data"]} == {
        "handbook/travel.md",
        "handbook/escalation.md",
    }
    assert str(folder) not in response.text


def test_truncation_keeps_the_system_prompt_the_passages_and_the_question(
    kb: tuple[Server, Path],
) -> None:
    gateway, _ = kb
    filler = "We talked about trains, planes and the weather in some detail. " * 6
    messages: list[Any] = [{"role": "system", "content": "Answer in one sentence."}]
    for n in range(8):
        messages += [
            {"role": "user", "content": f"Turn {n}. {filler}"},
            {"role": "assistant", "content": f"Reply {n}. {filler}"},
        ]
    messages.append({"role": "user", "content": HOTEL})
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="handbook-small", messages=messages
        )
    assert raw.http_response.status_code == 200
    dropped = int(raw.http_response.headers["x-enclave-context-dropped"])
    assert dropped >= 4 and dropped % 2 == 0  # whole turns: a question and its reply
    seen = json.loads(RECORDS[gateway.url].read_text().splitlines()[-1])
    sent = seen["messages"]
    assert sent[0]["role"] == "system" and "[1] Travel policy" in sent[0]["content"]
    assert sent[1] == messages[0] and sent[-1] == messages[-1]
    assert len(sent) == len(messages) + 1 - dropped
    kept = [m["content"] for m in sent[2:-1]]
    assert kept == [m["content"] for m in messages[1 + dropped : -1]]  # the newest turns
    assert 0 < seen["max_tokens"] <= 350  # what fits: at most half the context
