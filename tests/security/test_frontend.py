"""A chat frontend in front of a real gateway: its users told apart, its bookkeeping in the back.

Open WebUI holds one key for all its users and, with ENABLE_FORWARD_USER_INFO_HEADERS,
names each in X-OpenWebUI-User-* headers. Through a real gateway process, with the
openai SDK as Open WebUI uses it, and a recording upstream standing in for the
organisation's node (a test double: it records what reached it):

- a frontend key's user is in the audit record (id, email, role) and, as a
  pseudonym only, in the log line; each user has their own rate limit;
- an ordinary key's user headers are ignored, and no such header ever goes upstream;
- Open WebUI's title request is background: no retrieval on a collection-bound
  alias, the background model answers, and the node is told ``background``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from functions.endusers import USER_HEADERS
from tests.conftest import Server, create_key, gateway_env, start
from tests.security.conftest import Recorder, rec

ALICE = {
    "X-OpenWebUI-User-Id": "3f2a9c1e-0b7d-4e5f-9a8b-1c2d3e4f5a6b",
    "X-OpenWebUI-User-Email": "alice@example.com",
    "X-OpenWebUI-User-Role": "user",
    "X-OpenWebUI-User-Name": "Alice M%C3%BCller",
}
TITLE = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme or subject of the "
    'conversation.\n### Output:\nJSON format: { "title": "your concise title here" }\n'
    "### Chat History:\n<chat_history>\nUSER: ECHO how many leave days do I have?\n"
    "</chat_history>"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frontend-data")


@pytest.fixture(scope="module")
def keys(data: Path) -> dict[str, str]:
    """A frontend key (2 requests a minute per user) and an ordinary one, made by the CLI."""
    return {
        "frontend": create_key(data, "acme", "--trust-user-headers", "--user-rpm", "2"),
        "plain": create_key(data, "acme"),
    }


@pytest.fixture(scope="module")
def gateway(
    rec_upstream: Recorder, data: Path, keys: dict[str, str], log_dir: Path
) -> Iterator[Server]:
    url = rec_upstream.url
    env = gateway_env(
        [
            rec("main", "chat", url),
            rec("small", "chat-small", url),
            rec("hosted", "chat-hosted", url, location="external"),
        ],
        ENCLAVE_DATA_DIR=str(data),
        ENCLAVE_GATEWAY_BACKGROUND_MODELS=json.dumps({"chat": "chat-small"}),
        ENCLAVE_GATEWAY_ALIASES=json.dumps(
            {"handbook": {"model": "chat", "collections": ["handbook"]}}
        ),
        ENCLAVE_GATEWAY_COLD_WAIT_S="0",
    )
    server = start("gateway", env, log_dir)
    yield server
    server.stop()


def sdk(gateway: Server, key: str, headers: dict[str, str] | None = None) -> OpenAI:
    return OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=key,
        max_retries=0,
        timeout=30,
        default_headers=headers or {},
    )


def ask(client: OpenAI, trace: str, text: str = "ECHO hello", model: str = "chat") -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        extra_headers={"x-request-id": trace},
    )


def audited(data: Path, trace: str) -> dict[str, Any]:
    """The request's audit record (durable before its answer's last byte left)."""
    for path in sorted((data / "audit").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("trace_id") == trace:
                return dict(record)
    raise AssertionError(f"no audit record for {trace}")


def received(upstream: Recorder, trace: str) -> dict[str, Any]:
    """What reached the upstream for the request ``trace``."""
    found = [r for r in upstream.requests() if r["headers"].get("x-request-id") == trace]
    assert len(found) == 1, found
    return dict(found[0])


def logged(gateway: Server, trace: str) -> dict[str, Any]:
    assert gateway.logged(lambda line: line.get("trace.id") == trace and line["message"] == "chat")
    return next(
        line
        for line in gateway.logs()
        if line.get("trace.id") == trace and line["message"] == "chat"
    )


def test_a_frontends_user_is_audited_logged_as_a_pseudonym_and_never_sent_upstream(
    gateway: Server, keys: dict[str, str], data: Path, rec_upstream: Recorder
) -> None:
    with sdk(gateway, keys["frontend"], ALICE) as client:
        answer = ask(client, "fe-alice-1")
    assert answer.http_response.status_code == 200
    assert answer.parse().choices[0].message.content == "hello"

    record = audited(data, "fe-alice-1")
    user = record["end_user"]
    assert user == {
        "id": ALICE["X-OpenWebUI-User-Id"],
        "pseudonym": user["pseudonym"],
        "source": "openwebui",
        "email": "alice@example.com",
        "role": "user",
    }
    line = logged(gateway, "fe-alice-1")
    assert line["enclave"]["end_user"] == user["pseudonym"]
    assert line["enclave"]["priority"] == "interactive"
    log_text = gateway.log.read_text()
    assert "alice@example.com" not in log_text and ALICE["X-OpenWebUI-User-Id"] not in log_text

    upstream = received(rec_upstream, "fe-alice-1")
    assert not set(USER_HEADERS) & set(upstream["headers"])  # none of them left
    sent = json.dumps(upstream)
    assert "alice@example.com" not in sent and ALICE["X-OpenWebUI-User-Id"] not in sent
    assert upstream["headers"]["x-enclave-priority"] == "interactive"  # the gateway's own


def test_each_user_has_their_own_rate_limit_under_one_key(
    gateway: Server, keys: dict[str, str]
) -> None:
    carol = {"X-OpenWebUI-User-Id": "carol-1", "X-OpenWebUI-User-Role": "user"}
    with sdk(gateway, keys["frontend"], carol) as client:
        assert [ask(client, f"fe-carol-{i}").http_response.status_code for i in range(2)] == [
            200,
            200,
        ]
        with pytest.raises(openai.RateLimitError) as refused:
            ask(client, "fe-carol-2")
    assert "for user u_" in refused.value.message
    assert "carol" not in refused.value.message  # the pseudonym, not the id
    with sdk(gateway, keys["frontend"], {"x-enclave-user": "dave"}) as client:
        assert ask(client, "fe-dave-0").http_response.status_code == 200  # still let in
    with sdk(gateway, keys["frontend"]) as client:  # nobody named: the key's own request
        owner = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "ECHO hi"}], user="erin"
        )
    assert owner.choices[0].message.content == "hi"  # the body's user: a user of its own


def test_an_ordinary_keys_user_headers_are_ignored_and_not_forwarded(
    gateway: Server, keys: dict[str, str], data: Path, rec_upstream: Recorder
) -> None:
    forged = {**ALICE, "x-enclave-user": "mallory; drop", "X-OpenWebUI-User-Role": "ad min"}
    with sdk(gateway, keys["plain"], forged) as client:
        answers = [ask(client, f"plain-{i}").http_response.status_code for i in range(3)]
        body_user = client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "ECHO hi"}],
            user="session-42",
            extra_headers={"x-request-id": "plain-body"},
        )
    assert answers == [200, 200, 200]  # not one user, not limited per user, not a 400
    assert body_user.http_response.status_code == 200
    for trace in ("plain-0", "plain-body"):
        assert "end_user" not in audited(data, trace)
        assert "end_user" not in logged(gateway, trace)["enclave"]
        assert not set(USER_HEADERS) & set(received(rec_upstream, trace)["headers"])
    # the body's user stays the OpenAI field it is, passed on as it came
    assert json.loads(received(rec_upstream, "plain-body")["body"])["user"] == "session-42"


def test_a_malformed_user_from_a_frontend_is_400(gateway: Server, keys: dict[str, str]) -> None:
    bad = {"X-OpenWebUI-User-Id": "u1", "X-OpenWebUI-User-Name": "Eve%0AForged: yes"}
    with (
        sdk(gateway, keys["frontend"], bad) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        ask(client, "fe-bad")
    assert refused.value.body["param"] == "x-openwebui-user-name"  # type: ignore[index]


def test_open_webuis_title_request_is_background_work(
    gateway: Server, keys: dict[str, str], data: Path, rec_upstream: Recorder
) -> None:
    with sdk(gateway, keys["frontend"], {"X-OpenWebUI-User-Id": "title-user"}) as client:
        answer = ask(client, "fe-title", TITLE, model="handbook")
        chat = ask(client, "fe-chat", "ECHO hello")
    assert answer.http_response.status_code == 200
    assert answer.http_response.headers["x-enclave-deployment"] == "small"
    assert chat.http_response.headers["x-enclave-deployment"] == "main"
    decisions = audited(data, "fe-title")["decisions"]
    assert decisions["priority"] == "background (openwebui:title) -> chat-small"
    assert decisions["retrieval"] == "skipped (openwebui:title)"  # the alias's collection
    upstream = received(rec_upstream, "fe-title")
    assert upstream["headers"]["x-enclave-priority"] == "background"
    assert [m["role"] for m in json.loads(upstream["body"])["messages"]] == ["user"]  # no passages
    assert logged(gateway, "fe-title")["enclave"]["priority"] == "background"
    assert received(rec_upstream, "fe-chat")["headers"]["x-enclave-priority"] == "interactive"


def test_any_key_may_ask_for_background_and_only_the_gateway_tells_the_node(
    gateway: Server, keys: dict[str, str], rec_upstream: Recorder
) -> None:
    with sdk(gateway, keys["plain"]) as client:
        lowered = client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "ECHO later"}],
            extra_headers={"x-enclave-priority": "background", "x-request-id": "bg-header"},
        )
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "ECHO now"}],
                extra_headers={"x-enclave-priority": "urgent", "x-request-id": "bg-bad"},
            )
        client.chat.completions.with_raw_response.create(
            model="chat-hosted",
            messages=[{"role": "user", "content": "ECHO out"}],
            extra_headers={"x-enclave-priority": "background", "x-request-id": "bg-hosted"},
        )
    assert lowered.http_response.headers["x-enclave-deployment"] == "small"
    assert received(rec_upstream, "bg-header")["headers"]["x-enclave-priority"] == "background"
    # an external provider is not our node: it is told nothing of our priorities
    assert "x-enclave-priority" not in received(rec_upstream, "bg-hosted")["headers"]
    refused = logged(gateway, "bg-bad")["enclave"]
    assert refused["decisions"]["priority"].startswith("refused:")
    assert "priority" not in refused  # no class for a request refused while classing it
