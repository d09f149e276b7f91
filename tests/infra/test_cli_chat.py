"""`enclave chat`: a question to a real gateway and node, answered in the terminal."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.cli import main
from infra.cli_chat import Answer, ChatError, request_body, sources, take
from tests.conftest import (
    API_KEY,
    Server,
    deployment,
    enclave_cli,
    free_port,
    gateway_env,
    start,
)

TRAVEL = "# Travel policy\n\nHotel costs are capped at 180 euros per night.\n"


@dataclass
class Said:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def chat(capsys: pytest.CaptureFixture[str]) -> Callable[..., Said]:
    """``enclave chat ARGS…`` in this process (the gateway and node it asks are real)."""

    def run(*args: str) -> Said:
        code = main(["chat", *args])
        out, err = capsys.readouterr()
        return Said(code, out, err)

    return run


def test_the_local_stack_is_asked_with_its_kept_key(
    tmp_path: Path, gateway: Server, chat: Callable[..., Said], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "api_key").write_text(API_KEY)  # as `enclave up` keeps it
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENCLAVE_GATEWAY_PORT", str(gateway.port))
    done = chat("What is the capital of France?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and done.stderr == ""


def test_a_plain_answer_with_a_system_prompt(gateway: Server, chat: Callable[..., Said]) -> None:
    args = ("--base-url", f"{gateway.url}/v1", "--key", API_KEY, "--no-stream")
    done = chat("Hello", *args, "--system", "Answer in one sentence.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--model", "nope"), "(HTTP 404)"),
        (("--key", "sk-wrong-" + "x" * 24), "(HTTP 401)"),
    ],
)
def test_a_refusal_is_one_readable_line(
    gateway: Server, chat: Callable[..., Said], flags: tuple[str, ...], message: str
) -> None:
    base = ("--base-url", f"{gateway.url}/v1", "--key", API_KEY)
    done = chat("Hello", *base, *flags)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("enclave: ") and line.endswith(message)
    assert "Traceback" not in done.stderr


def test_no_stack_and_no_key_are_said_plainly(
    tmp_path: Path, chat: Callable[..., Said], monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = f"http://127.0.0.1:{free_port()}/v1"
    done = chat("Hello", "--base-url", nothing, "--key", API_KEY)
    assert done.returncode == 1
    said = f"enclave: nothing answers at {nothing}: is the stack up (`enclave up`)?\n"
    assert done.stderr == said
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path))
    keyless = chat("Hello")
    assert keyless.returncode == 2 and "no API key" in keyless.stderr
    assert len(keyless.stderr.splitlines()) == 1


@pytest.fixture(scope="module")
def kb_gateway(
    tmp_path_factory: pytest.TempPathFactory, node: Server, log_dir: Path
) -> Iterator[Server]:
    data, docs = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("kb") / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(TRAVEL)
    done = enclave_cli(data, "ingest", str(docs), "--collection", "handbook", cwd=docs.parent)
    assert done.returncode == 0, done.stderr
    env = gateway_env([deployment("local", node)], ENCLAVE_DATA_DIR=str(data))
    gateway = start("gateway", env, log_dir)
    yield gateway
    gateway.stop()


def test_a_collection_is_asked_and_its_sources_listed(
    kb_gateway: Server, chat: Callable[..., Said]
) -> None:
    base = ("--base-url", f"{kb_gateway.url}/v1", "--key", API_KEY)
    done = chat("How much can a hotel cost per night?", *base, "--collection", "handbook")
    assert done.returncode == 0, done.stderr
    assert "Sources" in done.stdout and "docs/travel.md" in done.stdout


def test_the_request_carries_model_system_and_collections() -> None:
    args = argparse.Namespace(
        question="Q", model=None, system="S", no_stream=True, collections=["a", "b"]
    )
    assert request_body(args, "smollm2") == {
        "model": "smollm2",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "stream": False,
        "enclave": {"collections": ["a", "b"]},
    }


def test_citations_are_listed_once() -> None:
    cited = [{"index": 1, "source": "docs/travel.md", "title": "Travel policy"}]
    assert sources(Answer("Paris.", cited)) == "Sources:\n  [1] Travel policy (docs/travel.md)"
    # an answer that carries its own Sources block (the gateway can append one) is left alone
    assert sources(Answer("Paris [1].\n\n**Sources**\n1. Travel policy", cited)) == ""
    assert sources(Answer("Paris.")) == ""


def test_an_error_inside_the_stream_ends_the_answer() -> None:
    answer = Answer()
    take(answer, {"choices": [{"delta": {"content": "Par"}}]}, lambda text: None)
    with pytest.raises(ChatError, match="model overloaded"):
        take(answer, {"error": {"message": "model overloaded"}}, lambda text: None)
    assert answer.text == "Par"
