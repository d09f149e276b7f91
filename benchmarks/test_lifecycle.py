"""What the request lifecycle costs per request, in process.

End to end, the gateway's added latency on this shared 2-core VM swings by more
than a millisecond from run to run, so a 0.1 ms budget cannot be read off an HTTP
benchmark. These measure the lifecycle's own work directly: running the chat
steps through :func:`~functions.lifecycle.run_steps` instead of a plain loop, and
closing a :class:`~functions.lifecycle.Call` (the counters, the histograms, the
one ECS log line to a file, the audit record queued). The old path did the same
counting and logged two lines (``chat`` and ``request``) instead of one.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from loguru import logger
from starlette.datastructures import Headers

from benchmarks.conftest import report
from functions.audit.local import RequestAudit
from functions.context import ChatContext, Principal
from functions.lifecycle import Call, Lifecycle, run_steps
from functions.logs import configure_logging
from functions.metrics import Metrics
from functions.wire import ChatCompletionRequest

BODY = ChatCompletionRequest.model_validate(
    {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
)
CTX = ChatContext(
    request_id="0af7651916cd43dd8448eb211c80319c",
    headers=Headers({}),
    principal=Principal(key_id="key_1", tenant="acme"),
    body=BODY,
    decisions={"auth": "key", "filter": "allow", "route": "d1", "rate_limit": "admitted"},
)


async def _same(ctx: ChatContext) -> ChatContext:
    return ctx


STEPS = tuple((name, _same) for name in ("retrieval", "filter", "route", "comply", "cache"))


def _per_call_us(benchmark: Any) -> float:
    return float(benchmark.stats.stats.median) * 1e6


def test_close_one_chat(benchmark: Any) -> None:
    configure_logging("gateway", stream=io.StringIO())
    lifecycle = Lifecycle(Metrics("gateway"), RequestAudit(None))
    loop = asyncio.new_event_loop()

    def close() -> None:
        owner = Call(kind="chat", route="/v1/chat/completions", ctx=CTX, model="m")
        owner.deployment, owner.first_token_s = "d1", 0.01
        loop.run_until_complete(lifecycle.close(owner, 200, "POST", "/v1/chat/completions"))

    benchmark.pedantic(close, rounds=2000, iterations=1, warmup_rounds=100)
    loop.close()
    report(
        benchmark, "lifecycle close (metrics, one log line)", us_per_request=_per_call_us(benchmark)
    )


def test_run_steps_against_a_plain_loop(benchmark: Any) -> None:
    loop = asyncio.new_event_loop()

    def steps() -> None:
        loop.run_until_complete(run_steps(STEPS, CTX, Call()))

    benchmark.pedantic(steps, rounds=2000, iterations=1, warmup_rounds=100)
    loop.close()
    report(benchmark, "run_steps over 5 steps", us_per_request=_per_call_us(benchmark))


def test_one_log_line_for_comparison(benchmark: Any) -> None:
    """What the old path wrote twice per chat (``chat`` and ``request``), once."""
    configure_logging("gateway", stream=io.StringIO())
    fields = {"model": "m", "deployment": "d1", "status": "200", "decisions": dict(CTX.decisions)}

    def line() -> None:
        logger.info("chat", ms=1.23, **fields)

    benchmark.pedantic(line, rounds=2000, iterations=1, warmup_rounds=100)
    report(benchmark, "one ECS log line", us_per_request=_per_call_us(benchmark))
