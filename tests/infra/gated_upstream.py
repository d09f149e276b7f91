"""A gated streaming upstream: a test double for a model still generating when a stop comes.

It streams the first words of its answer at once, then holds the rest back until
someone posts to ``/open``, so a test can stop the launcher while the answer is
provably in flight and then let it finish. Run as
``python -m tests.infra.gated_upstream PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FIRST, REST = "The first half, ", "and the second half after the gate."


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-gated",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gated",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _stream(gate: asyncio.Event) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": FIRST})
    await gate.wait()
    yield _chunk({"content": REST})
    yield _chunk({}, "stop")
    yield b"data: [DONE]\n\n"


GATE = asyncio.Event()


async def chat(request: Request) -> Response:
    await request.body()
    return StreamingResponse(_stream(GATE), media_type="text/event-stream")


async def open_gate(request: Request) -> Response:
    GATE.set()
    return JSONResponse({"open": True})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/open", open_gate, methods=["POST"]),
        Route("/health", health),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
