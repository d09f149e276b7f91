"""A recording, scripted OpenAI-compatible upstream: a test double standing in for a model
server or a hosted provider, behaving as real models do where it matters here.

Every request (path, headers, body) is appended to the JSON-lines file ``RECORD``.
What it answers depends on the last user message's first word, so one process can
play every part a test needs:

    QUOTE   quotes the first retrieved passage of the system messages, with its [1]
    TOOL    calls a tool whose JSON arguments carry every placeholder of the request
    ECHO    repeats the user message (rest of it)
    BURST   as ECHO, but the whole stream in one write, as a fast model's answer reaches
            a gateway that fell behind
    REFUSE  refuses, repeating the rest in the ``refusal`` field
    REASON  thinks aloud in ``reasoning_content``, repeating the rest
    ALL     repeats every placeholder the request carried, in system messages too
    KEYERR  fails 401 quoting the credential it received, as real providers do
    BADREQ  fails 400 quoting the credential it received
    else    "OK"

Streams go two characters a chunk with a small pause, so placeholders, numbers and
multi-byte characters are split across chunks; ``n`` choices are answered alike.
Run as ``python -m tests.security.recording_upstream PORT``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9]+>")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _last_user(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return _text(users[-1]) if users else ""


def _passage(body: dict[str, Any]) -> str:
    for message in body["messages"]:
        text = _text(message)
        if message["role"] == "system" and "\n[1] " in text:
            lines = text.split("\n[1] ", 1)[1].splitlines()
            return lines[1] if len(lines) > 1 else ""
    return ""


def _message(body: dict[str, Any], auth: str) -> tuple[dict[str, Any], str, int]:
    """The answer's message, its finish reason, and the HTTP status."""
    word, _, rest = _last_user(body).partition(" ")
    everything = orjson.dumps(body).decode()
    if word == "QUOTE":
        return {"content": f"Per the policy: {_passage(body)} [1]"}, "stop", 200
    if word == "TOOL":
        args = {"values": PLACEHOLDER.findall(_last_user(body)), "note": rest}
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": orjson.dumps(args).decode()},
        }
        return {"content": None, "tool_calls": [call]}, "tool_calls", 200
    if word in ("ECHO", "BURST"):
        return {"content": rest}, "stop", 200
    if word == "REFUSE":
        return {"content": None, "refusal": rest}, "stop", 200
    if word == "REASON":
        return {"content": "done", "reasoning_content": rest}, "stop", 200
    if word == "ALL":
        return {"content": " ".join(sorted(set(PLACEHOLDER.findall(everything))))}, "stop", 200
    if word in ("KEYERR", "BADREQ"):
        key = auth.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key}. Authorization: {auth}"
        return {"error": message}, "", 401 if word == "KEYERR" else 400
    return {"content": "OK"}, "stop", 200


def _chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
    payload: dict[str, Any] = {
        "id": "chatcmpl-rec",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "rec",
        "choices": choices,
    }
    if usage is not None:
        payload["usage"] = usage
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _pieces(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message as deltas of two characters each."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    for field in ("content", "refusal", "reasoning_content"):
        text = message.get(field)
        if isinstance(text, str):
            deltas += [{field: text[i : i + 2]} for i in range(0, len(text), 2)]
    for index, call in enumerate(message.get("tool_calls") or []):
        head = {"index": index, "id": call["id"], "type": "function"}
        deltas.append({"tool_calls": [{**head, "function": {"name": "lookup", "arguments": ""}}]})
        args = call["function"]["arguments"]
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 2]}}]}
            for i in range(0, len(args), 2)
        ]
    return deltas


def _events(message: dict[str, Any], finish: str, n: int) -> list[bytes]:
    events = [
        _chunk([{"index": i, "delta": delta, "finish_reason": None} for i in range(n)])
        for delta in _pieces(message)
    ]
    events.append(_chunk([{"index": i, "delta": {}, "finish_reason": finish} for i in range(n)]))
    events.append(_chunk([], {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}))
    return [*events, b"data: [DONE]\n\n"]


async def _stream(events: list[bytes], burst: bool) -> AsyncIterator[bytes]:
    if burst:
        yield b"".join(events)
        return
    for event in events:
        yield event
        await asyncio.sleep(0.001)


def _record(entry: bytes) -> None:
    with open(os.environ["RECORD"], "ab") as record:
        record.write(entry + b"\n")


async def chat(request: Request) -> Response:
    raw = await request.body()
    headers = dict(request.headers)
    entry = {"path": request.url.path, "headers": headers, "body": raw.decode()}
    await asyncio.to_thread(_record, orjson.dumps(entry))
    body = orjson.loads(raw)
    message, finish, status = _message(body, headers.get("authorization", ""))
    if status != 200:
        error = {"message": message["error"], "type": "invalid_request_error", "code": "bad"}
        return Response(orjson.dumps({"error": error}), status, media_type="application/json")
    n = body.get("n") or 1
    if body.get("stream"):
        events = _events(message, finish, n)
        burst = _last_user(body).startswith("BURST ")
        return StreamingResponse(_stream(events, burst), media_type="text/event-stream")
    full = {"role": "assistant", "content": None, "refusal": None, **message}
    answer = {
        "id": "chatcmpl-rec",
        "object": "chat.completion",
        "created": 1,
        "model": "rec",
        "choices": [
            {"index": i, "finish_reason": finish, "logprobs": None, "message": full}
            for i in range(n)
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }
    return Response(orjson.dumps(answer), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/health", health),
        Route("/v1/models", health),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
