"""Content safety through real processes: what the model side sees, what the client gets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, Server, free_port, gateway_env, launch, start
from tests.openapi import validate, validate_stream

PHONE, ID_CARD, EMAIL = "13812345678", "11010519491231002X", "zhang.wei@example.cn"
AUTH = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[tuple[str, Path]]:
    """The echoing upstream (a test double) and the file of request bodies it received."""
    record = tmp_path_factory.mktemp("echo") / "requests.jsonl"
    record.touch()
    port = free_port()
    env = {**os.environ, "ECHO_RECORD": str(record)}
    server = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, log_dir, port)
    yield server.url, record
    server.stop()


def echo_deployment(url: str, model: str, location: str) -> dict[str, Any]:
    return {
        "name": f"echo-{location}",
        "model": model,
        "api_base": f"{url}/v1",
        "upstream_model": "echo",
        "location": location,
    }


@pytest.fixture(scope="module")
def gateway(echo: tuple[str, Path], log_dir: Path) -> Iterator[Server]:
    dead = f"http://127.0.0.1:{free_port()}"
    env = gateway_env(
        [
            echo_deployment(echo[0], "echo", "on_prem"),
            {"name": "dead-on-prem", "model": "private", "api_base": f"{dead}/v1"},
            echo_deployment(echo[0], "external", "external"),
        ],
        ENCLAVE_GATEWAY_FALLBACKS=json.dumps({"private": ["external"]}),
        ENCLAVE_GATEWAY_COLD_WAIT_S="1",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


def sent_to_upstream(record: Path) -> str:
    return record.read_text()


def test_masked_values_never_reach_the_model_and_come_back_restored(
    gateway: Server, echo: tuple[str, Path]
) -> None:
    text = f"我的手机号是{PHONE}，身份证{ID_CARD}，邮箱{EMAIL}。请复述。"
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0) as sdk:
        plain = sdk.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": text}]
        )
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in sdk.chat.completions.create(
                model="echo", messages=[{"role": "user", "content": text}], stream=True
            )
            if c.choices
        )
    seen = sent_to_upstream(echo[1])
    for value in (PHONE, ID_CARD, EMAIL):
        assert value not in seen
    assert "<PHONE_1>" in seen and "<ID_CARD_1>" in seen and "<EMAIL_1>" in seen
    assert plain.choices[0].message.content == text
    assert streamed == text  # placeholders split across 3-character chunks, restored exactly


def test_a_placeholder_the_user_types_is_never_resolved(gateway: Server) -> None:
    text = f"call {PHONE} or <PHONE_2>, not <PHONE_1>"
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=30,
        json={"model": "echo", "messages": [{"role": "user", "content": text}]},
    )
    assert response.json()["choices"][0]["message"]["content"] == text


def test_a_secret_in_the_answer_ends_the_stream_with_an_error(gateway: Server) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "LEAK"}], "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30
    ) as response:
        lines = list(response.iter_lines())
    chunks = validate_stream(lines)
    assert "error" in chunks[-1] and chunks[-1]["error"]["code"] == "content_filter"
    assert "sk-proj" not in "\n".join(lines)
    plain = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=30,
        json={**body, "stream": False},
    ).json()
    validate("CreateChatCompletionResponse", plain)
    assert plain["choices"][0]["finish_reason"] == "content_filter"
    assert "sk-proj" not in json.dumps(plain)


def test_confidential_data_never_reaches_an_external_fallback(
    gateway: Server, echo: tuple[str, Path]
) -> None:
    before = sent_to_upstream(echo[1])
    confidential = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=30,
        json={"model": "private", "messages": [{"role": "user", "content": f"ID {ID_CARD}"}]},
    )
    assert confidential.status_code == 503
    validate("ErrorResponse", confidential.json())
    raised = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        timeout=30,
        headers={**AUTH, "x-enclave-classification": "secret"},
        json={"model": "private", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert raised.status_code == 503
    assert sent_to_upstream(echo[1]) == before, "classified data reached the external upstream"
    public = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=30,
        json={"model": "private", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert public.status_code == 200 and public.headers["x-enclave-deployment"] == "echo-external"
    assert gateway.logged(
        lambda line: line.get("enclave", {}).get("decisions", {}).get("level") == "confidential"
    )


def test_the_filter_function_url(gateway: Server) -> None:
    url = f"{gateway.url}/v1/filter"
    assert httpx.post(url, json={"text": PHONE}).status_code == 401
    masked = httpx.post(url, headers=AUTH, json={"text": f"电话{PHONE}", "direction": "input"})
    body = masked.json()
    assert body["verdict"] == "mask" and PHONE not in body["masked_text"]
    assert body["detections"][0]["type"] == "PHONE"
    assert body["masked_text"][body["detections"][0]["start"] :].startswith("<PHONE_1>") or (
        "<PHONE_1>" in body["masked_text"]
    )
    bad = httpx.post(url, headers=AUTH, json={"text": "x", "direction": "sideways"})
    assert bad.status_code == 400
