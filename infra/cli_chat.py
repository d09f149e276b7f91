"""``enclave chat "question"``: ask the running stack, and watch the answer stream in.

It is an OpenAI client of the gateway like any other (httpx, no SDK): the base URL
and key default to the local stack's (``enclave up``: ``<data_dir>/api_key``), the
model to the stack's default; ``--collection`` retrieves from a knowledge
collection (the request's ``enclave.collections``). Sources the gateway cites are
listed after the answer. A refusal is the gateway's own error message on one line
and a non-zero exit.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from functions.settings import Settings

TIMEOUT = httpx.Timeout(300.0, connect=5.0)  # a cold node may take minutes; a dead one refuses
# an answer that already ends in a Markdown "Sources" block (the gateway can append one)
_SOURCES_BLOCK = re.compile(r"^\W*sources\W*$", re.IGNORECASE | re.MULTILINE)


class ChatError(Exception):
    """The gateway refused or failed; the message is its own (OpenAI error ``message``)."""


@dataclass
class Answer:
    text: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser("chat", help="ask the running stack; the answer streams here")
    chat.add_argument("question")
    chat.add_argument("--model", help="default: the stack's default model")
    chat.add_argument(
        "--collection",
        action="append",
        dest="collections",
        metavar="NAME",
        help="retrieve from this knowledge collection (repeatable)",
    )
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    chat.add_argument("--base-url", help="default: the local gateway's /v1")
    chat.add_argument("--key", help="default: the local stack's key (<data_dir>/api_key)")


def default_base_url(settings: Settings) -> str:
    host = settings.gateway.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.gateway.port}/v1"


def default_key(settings: Settings) -> str | None:
    """The configured bootstrap key, or the one ``enclave up`` kept; never a new one."""
    if settings.gateway.api_keys:
        return settings.gateway.api_keys[0].get_secret_value()
    kept = settings.data_dir / "api_key"
    return kept.read_text().strip() if kept.is_file() else None


def request_body(args: argparse.Namespace, default_model: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    body: dict[str, Any] = {
        "model": args.model or default_model,
        "messages": [*messages, {"role": "user", "content": args.question}],
        "stream": not args.no_stream,
    }
    if args.collections:
        body["enclave"] = {"collections": args.collections}
    return body


def _error_of(response: httpx.Response) -> ChatError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300] or response.reason_phrase
    return ChatError(f"{message} (HTTP {response.status_code})")


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON events of an SSE stream, up to ``[DONE]`` (comments are keep-alives)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = orjson.loads(data)
        if isinstance(event, dict):
            yield event


def take(answer: Answer, piece: dict[str, Any], on_text: Callable[[str], None]) -> None:
    """Fold one chunk (or a whole answer's message) into ``answer``."""
    if isinstance(piece.get("error"), dict):  # after the first byte, a failure is an event
        raise ChatError(str(piece["error"].get("message", "the answer failed")))
    extension = piece.get("enclave")
    if isinstance(extension, dict) and isinstance(extension.get("citations"), list):
        answer.citations = extension["citations"]
    for choice in piece.get("choices") or []:
        part = choice.get("delta") or choice.get("message") or {}
        text = part.get("content")
        if isinstance(text, str) and text:
            answer.text += text
            on_text(text)
        answer.finish_reason = choice.get("finish_reason") or answer.finish_reason


def ask(
    base_url: str,
    key: str,
    body: dict[str, Any],
    on_text: Callable[[str], None] = lambda text: None,
) -> Answer:
    """Send ``body`` to ``base_url``'s chat completions; text goes to ``on_text`` as it comes."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {key}"}
    answer = Answer()
    try:
        with (
            httpx.Client(timeout=TIMEOUT) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise _error_of(response)
            if not body.get("stream"):
                take(answer, orjson.loads(response.read()), on_text)
                return answer
            for event in _events(response.iter_lines()):
                take(answer, event, on_text)
    except httpx.ConnectError as exc:
        raise ChatError(f"nothing answers at {base_url}: is the stack up (`enclave up`)?") from exc
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        raise ChatError(f"the answer from {base_url} broke off: {exc}") from exc
    return answer


def sources(answer: Answer) -> str:
    """The cited documents as a short list, unless the answer already carries its own."""
    if not answer.citations or _SOURCES_BLOCK.search(answer.text):
        return ""
    lines: list[str] = []
    for citation in answer.citations:
        title, source = citation.get("title"), citation.get("source")
        named = f"{title} ({source})" if title and source and title != source else title or source
        lines.append(f"  [{citation.get('index', len(lines) + 1)}] {named}")
    return "Sources:\n" + "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    key = args.key or default_key(settings)
    if not key:
        print(
            f"enclave: no API key: pass --key, or start the stack with `enclave up`"
            f" (it keeps one in {settings.data_dir / 'api_key'})",
            file=sys.stderr,
        )
        return 2
    base_url = args.base_url or default_base_url(settings)
    body = request_body(args, settings.gateway.deployments[0].model)

    shown: list[str] = []

    def show(text: str) -> None:
        shown.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        answer = ask(base_url, key, body, show)
    except ChatError as exc:
        if shown:  # the error starts on a line of its own
            print(flush=True)
        print(f"enclave: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    listed = sources(answer)
    print("\n\n" + listed if listed else "")
    return 0
