"""Gateways on a bucket keep nothing of their own: real processes, moto's S3, real Redis.

Two gateway processes with separate, empty data directories share only a bucket
(moto's S3 server on 127.0.0.1) and a redis-server, as stateless containers behind a
load balancer would. The model is the echoing upstream (a test double). Through
them: a key made on one is accepted by the other within 2 s, its rpm limit holds
exactly across both, its revocation on one is refused by the other within 2 s; a
document uploaded through one is retrieved through the other; an answer given by one
is rated through the other; afterwards neither gateway has written a byte to its
local data directory, and ``enclave audit verify`` over the bucket passes. A third
gateway killed with SIGKILL during an upload leaves the collection readable.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from pydantic import ValidationError

from functions.settings import Settings
from functions.storage import StorageSettings
from infra.cli_experiments import feedback_store
from tests.conftest import API_KEY, Server, enclave_cli, free_port, gateway_env, launch, start
from tests.functions.ratelimit.conftest import redis_url
from tests.s3 import BUCKET_SECRETS, new_bucket, s3_client, s3_server, storage_env

__all__ = ["redis_url", "s3_server"]  # fixtures this module uses
EMAIL = "jane.roe@example.org"
ADMIN = {"authorization": f"Bearer {API_KEY}"}  # the bootstrap admin key
PANDAS = (
    "# Giant pandas\n\nA giant panda eats 12 to 38 kilograms of bamboo a day, "
    "mostly stems and leaves, and spends 14 hours eating.\n"
)


@dataclass
class Shared:
    storage: StorageSettings
    first: Server
    second: Server
    data: tuple[Path, Path]

    def sdk(self, server: Server) -> OpenAI:
        return OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def echo(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The echoing upstream: a test double for the model."""
    record = tmp_path_factory.mktemp("echo-stateless") / "requests.jsonl"
    port = free_port()
    env = {**os.environ, "ECHO_RECORD": str(record)}
    server = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, log_dir, port)
    yield server
    server.stop()


def stateless_env(echo: Server, storage: StorageSettings, **extra: str) -> dict[str, str]:
    deployment = {"name": "echo", "model": "echo", "api_base": f"{echo.url}/v1"}
    return {**gateway_env([deployment]), **storage_env(storage), **BUCKET_SECRETS, **extra}


@pytest.fixture(scope="module")
def shared(
    echo: Server,
    s3_server: str,
    redis_url: str,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    storage = new_bucket(s3_server, "enclave-stateless")
    limits = {"backend": "redis", "redis_url": redis_url, "key_limits": {"rpm": 10_000}}
    env = stateless_env(echo, storage, ENCLAVE_GATEWAY_RATE_LIMIT=json.dumps(limits))
    data = (tmp_path_factory.mktemp("data-first"), tmp_path_factory.mktemp("data-second"))
    first = start("gateway", {**env, "ENCLAVE_DATA_DIR": str(data[0])}, log_dir, timeout=300)
    second = start("gateway", {**env, "ENCLAVE_DATA_DIR": str(data[1])}, log_dir, timeout=300)
    yield Shared(storage, first, second, data)
    first.stop()
    second.stop()


def rate(server: Server, body: dict[str, object]) -> httpx.Response:
    headers = {"authorization": f"Bearer {API_KEY}"}
    return httpx.post(f"{server.url}/v1/feedback", headers=headers, json=body, timeout=30)


def test_an_answer_of_one_gateway_is_rated_through_the_other(shared: Shared) -> None:
    with shared.sdk(shared.second) as sdk:
        answer = sdk.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-request-id": "answered-by-second"},
        )
    assert answer.choices[0].message.content == "hello"
    body = {"request_id": "answered-by-second", "rating": -1, "comment": f"write to {EMAIL}"}
    first = rate(shared.first, body)
    assert first.status_code == 200, first.text
    assert EMAIL not in first.json()["comment"]
    again = rate(shared.second, {"request_id": "answered-by-second", "rating": 1})
    assert again.status_code == 200, again.text  # replaces the first rating
    unknown = rate(shared.first, {"request_id": "nobody-asked", "rating": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"
    # what `enclave experiments report` and `enclave dataset export` read
    reader = feedback_store(Settings(storage=shared.storage))
    assert reader is not None
    (only,) = reader.ratings(tenant="default")
    assert (only.request_id, only.rating, only.comment) == ("answered-by-second", 1, None)


def test_a_streamed_answer_is_rated_through_the_other(shared: Shared) -> None:
    with shared.sdk(shared.first) as sdk:
        stream = sdk.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "streamed hello"}],
            stream=True,
            extra_headers={"x-request-id": "streamed-by-first"},
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "streamed hello"
    rated = rate(shared.second, {"request_id": "streamed-by-first", "rating": 1})
    assert rated.status_code == 200, rated.text
    keys = s3_client(shared.storage.s3_endpoint or "").list_objects_v2(
        Bucket="enclave-stateless", Prefix="state/feedback/ratings/"
    )
    assert len(keys["Contents"]) == 2  # one per rated answer and rater


def within_2_s(check: Callable[[], bool]) -> None:
    """``check`` holds within 2 s (the issue's bound for keys reaching every gateway)."""
    deadline = time.monotonic() + 2.0
    while not check():
        assert time.monotonic() < deadline, "not within 2 s"
        time.sleep(0.05)


def models_status(server: Server, key: str) -> int:
    """An authenticated request that no rate limit counts."""
    headers = {"authorization": f"Bearer {key}"}
    return httpx.get(f"{server.url}/v1/models", headers=headers, timeout=30).status_code


def chat_status(server: Server, key: str) -> int:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", headers=headers, json=body)
    return response.status_code


def test_a_key_its_limit_and_its_revocation_hold_across_gateways(shared: Shared) -> None:
    made = httpx.post(
        f"{shared.first.url}/v1/admin/keys",
        headers=ADMIN,
        json={"tenant": "acme", "rpm": 5},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    within_2_s(lambda: models_status(shared.second, key) == 200)
    # five chats a minute, counted in Redis, whichever gateway answers
    statuses = [chat_status((shared.first, shared.second)[i % 2], key) for i in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    revoked = httpx.post(
        f"{shared.second.url}/v1/admin/keys/{key_id}/revoke", headers=ADMIN, timeout=30
    )
    assert revoked.status_code == 200, revoked.text
    within_2_s(lambda: models_status(shared.first, key) == 401)


def upload(server: Server, name: str, text: str, timeout: float = 300) -> httpx.Response:
    return httpx.put(
        f"{server.url}/v1/admin/collections/handbook/documents",
        params={"filename": name},
        headers={**ADMIN, "content-type": "text/markdown"},
        content=text.encode(),
        timeout=timeout,
    )


def retrieve(server: Server, query: str) -> list[dict[str, object]]:
    response = httpx.post(
        f"{server.url}/v1/retrieve",
        headers=ADMIN,
        json={"query": query, "collections": ["handbook"], "top_k": 3},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


def test_a_document_uploaded_through_one_is_retrieved_through_the_other(shared: Shared) -> None:
    uploaded = upload(shared.first, "pandas.md", PANDAS)
    assert uploaded.status_code == 201, uploaded.text
    [top, *_] = retrieve(shared.second, "How much bamboo does a giant panda eat?")
    assert "38 kilograms" in str(top["text"])
    assert top["source"] == "upload/pandas.md"


def test_gateways_on_a_bucket_write_nothing_to_their_data_directories(shared: Shared) -> None:
    """After chats (plain and streamed) and ratings, every data directory is empty."""
    written = [
        f"{directory.name}/{path.relative_to(directory)}"
        for directory in shared.data
        for path in sorted(directory.rglob("*"))
    ]
    assert written == [], written


def test_the_audit_chains_of_both_gateways_verify_over_the_bucket(shared: Shared) -> None:
    env = {**storage_env(shared.storage), **BUCKET_SECRETS}
    done = enclave_cli(shared.data[0] / "cli", "audit", "verify", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 chain(s)" in done.stdout
    assert not (shared.data[0] / "cli").exists()


def test_a_gateway_killed_during_an_upload_leaves_the_collection_readable(
    shared: Shared, echo: Server, redis_url: str, log_dir: Path, tmp_path: Path
) -> None:
    limits = {"backend": "redis", "redis_url": redis_url}
    env = stateless_env(echo, shared.storage, ENCLAVE_GATEWAY_RATE_LIMIT=json.dumps(limits))
    doomed = start("gateway", {**env, "ENCLAVE_DATA_DIR": str(tmp_path / "d")}, log_dir, 300)
    # enough text for seconds of embedding: the kill lands before the upload commits
    long = "# Travel\n\n" + "".join(
        f"Rule {i}: trips to office {i} are booked through the travel desk.\n\n" for i in range(400)
    )
    answered: list[int] = []

    def send() -> None:
        try:
            answered.append(upload(doomed, "travel.md", long, timeout=60).status_code)
        except httpx.TransportError:  # the gateway died under it: what a client sees
            answered.append(0)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(1.0)  # the body is in, the embedding under way
    os.kill(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait(timeout=30)
    sender.join(timeout=60)
    assert answered == [0]  # killed before the commit: the client saw no success
    # the collection is as it was: readable, the earlier document whole and found
    [top, *_] = retrieve(shared.second, "How much bamboo does a giant panda eat?")
    assert "38 kilograms" in str(top["text"])
    listed = enclave_cli(
        tmp_path / "cli", "docs", "list", "--collection", "handbook", **storage_env(shared.storage)
    )
    assert listed.returncode == 0, listed.stderr
    assert "upload/pandas.md" in listed.stdout and "upload/travel.md" not in listed.stdout
    # and a retry of the upload lands in one piece
    again = upload(shared.first, "travel.md", long)
    assert again.status_code == 201, again.text  # added: nothing of the killed upload stayed
    [hit, *_] = retrieve(shared.second, "How are trips to office 321 booked?")
    assert hit["source"] == "upload/travel.md"


def test_a_bucket_refuses_the_file_rate_limit_backend(
    echo: Server, s3_server: str, log_dir: Path, tmp_path: Path
) -> None:
    """The file backend would count in a local SQLite file: a gateway on a bucket refuses
    it at start-up, before anything is written."""
    storage = new_bucket(s3_server, "enclave-file-limits")
    with pytest.raises(ValidationError, match="'file' rate-limit backend"):
        Settings(storage=storage, gateway={"rate_limit": {"backend": "file"}})
    data = tmp_path / "data"
    limits = json.dumps({"backend": "file"})
    env = stateless_env(echo, storage, ENCLAVE_GATEWAY_RATE_LIMIT=limits)
    with pytest.raises(RuntimeError, match="rate-limit backend"):
        start("gateway", {**env, "ENCLAVE_DATA_DIR": str(data)}, log_dir, timeout=60)
    assert not data.exists()


def test_ratings_are_refused_while_the_bucket_is_unreachable(
    echo: Server, s3_server: str, log_dir: Path, tmp_path: Path
) -> None:
    """A rating that cannot be stored is a 503 with Retry-After that names no bucket (fail
    closed); the answer it rates was given regardless."""
    storage = new_bucket(s3_server, "enclave-gone")
    env = stateless_env(echo, storage, ENCLAVE_DATA_DIR=str(tmp_path / "data"))
    server = start("gateway", env, log_dir)
    try:
        client = s3_client(s3_server)  # the bucket goes away under the running gateway
        for item in client.list_objects_v2(Bucket="enclave-gone").get("Contents", []):
            client.delete_object(Bucket="enclave-gone", Key=item["Key"])
        client.delete_bucket(Bucket="enclave-gone")
        with OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0) as sdk:
            sdk.chat.completions.create(
                model="echo",
                messages=[{"role": "user", "content": "hello"}],
                extra_headers={"x-request-id": "rated-while-gone"},
            )
        refused = rate(server, {"request_id": "rated-while-gone", "rating": 1})
    finally:
        server.stop()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    error = refused.json()["error"]
    assert error["code"] == "storage_unavailable" and "enclave-gone" not in error["message"]


def test_a_gateway_whose_bucket_is_missing_does_not_start_and_says_why(
    echo: Server, s3_server: str, log_dir: Path, tmp_path: Path
) -> None:
    """Fail closed: without its audit chain and its view of the keys a gateway serves nothing."""
    storage = new_bucket(s3_server, "enclave-never")
    s3_client(s3_server).delete_bucket(Bucket="enclave-never")
    env = stateless_env(echo, storage, ENCLAVE_DATA_DIR=str(tmp_path / "data"))
    with pytest.raises(RuntimeError, match="the gateway cannot start") as refused:
        start("gateway", env, log_dir, timeout=120)
    assert "storage" in str(refused.value).lower() or "NoSuchBucket" in str(refused.value)
