"""A fake OpenAI-compatible upstream: a test double that answers instantly.

The gateway benchmarks measure the gateway, not the model, so this stands in for
an inference node: ``POST /v1/chat/completions`` returns a fixed chat.completion
(with usage) at once, or for ``stream=True`` one SSE chunk per requested token
(``max_tokens``, default 4), a finish chunk, a usage chunk when asked, and
``[DONE]``. ``GET /health`` is 200. Run it as ``python -m benchmarks.fake_upstream PORT``;
``python -m benchmarks.fake_upstream PORT 20`` paces a stream like a model, one
word every 20 ms (the time-to-first-token comparison in :mod:`benchmarks.compare`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

MODEL = "fake-model"
CREATED = 1_700_000_000
USAGE = {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
# seconds between streamed words; 0: as fast as the socket takes them (set from argv)
TOKEN_DELAY_S = 0.0


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _events(count: int, usage: bool) -> AsyncIterator[bytes]:
    yield _sse(_chunk({"role": "assistant", "content": ""}))
    for _ in range(count):
        if TOKEN_DELAY_S:
            await asyncio.sleep(TOKEN_DELAY_S)
            yield _sse(_chunk({"content": " word"}))  # a paced stream reads like prose
        else:
            yield _sse(_chunk({"content": "ok"}))
    yield _sse(_chunk({}, "length"))
    if usage:
        total = {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count}
        yield _sse({**_chunk({}), "choices": [], "usage": total})
    yield b"data: [DONE]\n\n"


async def chat(request: Request) -> Response:
    body = orjson.loads(await request.body())
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        count = int(body.get("max_tokens") or body.get("max_completion_tokens") or 4)
        return StreamingResponse(_events(count, usage), media_type="text/event-stream")
    answer = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "length",
            }
        ],
        "usage": USAGE,
    }
    return Response(orjson.dumps(answer), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)]
)


if __name__ == "__main__":
    TOKEN_DELAY_S = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
