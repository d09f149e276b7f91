"""A test double for ``trtllm-serve``: same command line, same OpenAI-compatible routes.

``python fake_trtllm_serve.py MODEL --host H --port P [other trtllm-serve flags]`` serves
``GET /health``, ``GET /v1/models`` and a streaming ``POST /v1/chat/completions`` that
answers with the last user message, word by word (one token per word), honouring
``max_tokens`` and ``stop``, then a usage chunk when asked. A user message of
``"too long"`` is refused with 400, as trtllm-serve refuses a prompt past its context.

Environment: ``FAKE_TRTLLM_MODE`` = ``exit`` (exit at once with status 3) or
``unhealthy`` (``/health`` answers 503 forever); ``FAKE_TRTLLM_LOG`` = a file that
gets one JSON line per event: ``{"argv": …}`` at start, ``{"cancelled": n}`` when a
client went away after ``n`` words.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORD_DELAY_S = 0.01


def log(event: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_TRTLLM_LOG")
    if path:
        with open(path, "ab") as sink:
            sink.write(orjson.dumps(event) + b"\n")


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def answer(model: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
    last = next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"]
    words, stops = last.split(), body.get("stop") or []
    limit = body.get("max_tokens") or len(words) + 1
    sent, finish = 0, "stop"
    try:
        yield chunk(model, {"role": "assistant", "content": ""})
        for word in words:
            if word in stops:
                sent += 1
                break
            if sent >= limit:
                finish = "length"
                break
            await asyncio.sleep(WORD_DELAY_S)
            yield chunk(model, {"content": word if sent == 0 else f" {word}"})
            sent += 1
        yield chunk(model, {}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": sent, "total_tokens": 10 + sent}
            yield b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except asyncio.CancelledError:
        log({"cancelled": sent})
        raise


def app(model: str, mode: str) -> Starlette:
    async def health(request: Request) -> Response:
        return Response(status_code=503 if mode == "unhealthy" else 200)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model"}]})

    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if body["messages"][-1]["content"] == "too long":
            error = {"object": "error", "message": "prompt too long", "code": 400}
            return JSONResponse(error, status_code=400)
        return StreamingResponse(answer(model, body), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8000)
    args, _ = parser.parse_known_args()
    log({"argv": sys.argv[1:]})
    mode = os.environ.get("FAKE_TRTLLM_MODE", "")
    if mode == "exit":
        sys.exit(3)
    uvicorn.run(app(args.model, mode), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
