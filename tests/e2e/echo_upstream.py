"""An echoing OpenAI-compatible upstream: a test double that shows what reached the model.

It appends every request body it receives to the file named by ``ECHO_RECORD`` and
answers with the last user message, streamed three characters a chunk, so a test
can prove both what the model side saw and what the client got back. The message
``LEAK`` is answered with a secret, to exercise the output guard.
Run as ``python -m tests.e2e.echo_upstream PORT``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

SECRET = "Here is the key: sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789ABCD"


def _answer(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    text = str(users[-1]["content"]) if users else ""
    return SECRET if text == "LEAK" else text


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-echo",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "echo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _stream(text: str) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    for at in range(0, len(text), 3):
        yield _chunk({"content": text[at : at + 3]})
    yield _chunk({}, "stop")
    yield b"data: [DONE]\n\n"


def _record(raw: bytes) -> None:
    with open(os.environ["ECHO_RECORD"], "ab") as record:
        record.write(raw + b"\n")


async def chat(request: Request) -> Response:
    raw = await request.body()
    await asyncio.to_thread(_record, raw)
    body = orjson.loads(raw)
    text = _answer(body)
    if body.get("stream"):
        return StreamingResponse(_stream(text), media_type="text/event-stream")
    usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    answer = {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1,
        "model": "echo",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": text, "refusal": None},
            }
        ],
        "usage": usage,
    }
    return Response(orjson.dumps(answer), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
