"""A stand-in for the gateway's answer path, to be killed with SIGKILL under load.

``python -m tests.functions.audit.crash_app PORT DATA_DIR [durable|record]`` serves
``POST /v1/chat/completions`` as the gateway will once the lifecycle owner wires
the durable record in: build the request's record, ``await
RequestAudit.request_durable(...)``, and only then send the answer, with the trace
id in ``x-request-id``. ``record`` instead queues the record and answers at once
(today's gateway), which a crash test must catch losing records. The audit keys
and directory are the gateway's local defaults under ``DATA_DIR``, so ``enclave
audit verify`` with ``ENCLAVE_DATA_DIR=DATA_DIR`` checks what is left.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from functions.audit import AuditLog, AuditSettings
from functions.audit.local import RequestAudit, resolve_audit
from functions.context import Principal, RequestContext

MEMBER = Principal("key-crash", tenant="acme")


def make_app(data_dir: Path, durable: bool) -> Starlette:
    log = AuditLog(resolve_audit(AuditSettings(), data_dir))
    audit = RequestAudit(log)

    async def chat(request: Request) -> Response:
        started = time.perf_counter()
        ctx = RequestContext(
            request_id=uuid.uuid4().hex, headers=Headers(), principal=MEMBER
        ).decided("auth", "ok")
        await request.body()
        await asyncio.sleep(0.001)  # the model's turn
        usage = {"prompt_tokens": 3, "completion_tokens": 2}
        latency_s = time.perf_counter() - started
        if durable:
            await audit.request_durable(ctx, status=200, latency_s=latency_s, usage=usage)
        else:
            audit.request(ctx, status=200, latency_s=latency_s, usage=usage)
        answer = {"object": "chat.completion", "choices": [{"message": {"content": "ok"}}]}
        return JSONResponse(answer, headers={"x-request-id": ctx.request_id})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await log.start()
        yield
        await log.aclose()

    routes = [Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)]
    return Starlette(routes=routes, lifespan=lifespan)


if __name__ == "__main__":
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    durable = (sys.argv[3] if len(sys.argv) > 3 else "durable") == "durable"
    uvicorn.run(make_app(data_dir, durable), host="127.0.0.1", port=port, log_level="warning")
