"""Sending a chat request to one deployment, and relaying what comes back.

Two paths, one contract. OpenAI-compatible upstreams get the request as JSON
bytes over a pooled httpx client, and their SSE events are passed on as they
arrive, in batches of those that arrived together (:mod:`functions.sse`); the
client keeps httpx's API over aiohttp's pool (:mod:`functions.transport`),
imported in a thread at start-up. Other providers go through
``litellm.acompletion``, which translates both ways; litellm is imported in a
thread of its own, at start-up when a deployment needs it (:meth:`Relay.start`),
else never. Either way
:meth:`Relay.open` raises :class:`UpstreamUnavailableError` when the deployment
itself failed (refused, timed out, 5xx, 429, misconfigured), so the caller can
fail over, and :class:`UpstreamError` when the upstream refused the request as
invalid; what a library raised is classified by
:func:`functions.errors.map_upstream_exception`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import httpx
import orjson

from functions.errors import (
    DEPLOYMENT_FAULTS,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
    map_upstream_exception,
)
from functions.lazy import Background
from functions.llm import load
from functions.logs import traceparent
from functions.settings import Deployment
from functions.sse import sse_batches

# The keywords litellm.acompletion gets from a request; everything that decides where it
# goes and with which credentials (model, api_base, api_key, provider, retries, timeout)
# comes from the deployment, in Settings. ``metadata`` is litellm's own (callbacks), so the
# caller's is not passed.
LITELLM_REQUEST_KWARGS = frozenset(
    {
        "messages",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "max_completion_tokens",
        "max_tokens",
        "n",
        "parallel_tool_calls",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "user",
    }
)
_MAX_MESSAGE = 512
# what a credential looks like in an error text: "sk-abc…", "Bearer …", "api_key=…", long tokens
_CREDENTIAL = re.compile(
    r"(?i)\b(?:bearer\s+|(?:api[_-]?key|token|secret|password|authorization)\s*[:=]\s*)\S+"
    r"|\b(?:sk|pk|rk|ak|key)[-_][A-Za-z0-9_\-*.]{3,}|\b[A-Za-z0-9_\-]{32,}\b"
)


def sanitised(message: str, secrets: tuple[str, ...] = ()) -> str:
    """An upstream's error text fit to show a caller: no credential and no fragment of one."""
    message = message[: 8 * _MAX_MESSAGE]
    for secret in secrets:
        message = message.replace(secret, "[REDACTED]")
        for i in range(len(secret) - 7):  # and any run of 8 of its characters
            message = message.replace(secret[i : i + 8], "[REDACTED]")
    message = _CREDENTIAL.sub("[REDACTED]", message)
    return message[:_MAX_MESSAGE]


@dataclass(slots=True)
class Opened:
    """An upstream that accepted the request: either a whole body or a stream of SSE
    payloads, in batches of those that arrived together (:mod:`functions.sse`)."""

    body: bytes | None = None
    events: AsyncGenerator[list[bytes]] | None = None
    status: int = 200


def _upstream_error(
    content: bytes, status: int, secrets: tuple[str, ...]
) -> tuple[str, str | None]:
    """The upstream's error message (sanitised) and code, from its error JSON."""
    try:
        error = orjson.loads(content)["error"]
        message = str(error["message"] if isinstance(error, dict) else error)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"The model server answered {status}.", None
    code = error.get("code") if isinstance(error, dict) else None
    return sanitised(message, secrets), code if isinstance(code, str) else None


def _secrets(deployment: Deployment) -> tuple[str, ...]:
    return (deployment.api_key.get_secret_value(),) if deployment.api_key is not None else ()


async def _sse_payloads(response: httpx.Response) -> AsyncGenerator[list[bytes]]:
    """The ``data:`` payloads of an SSE stream, a batch per network read that completed
    any (:func:`functions.sse.sse_batches`), each as soon as it is complete."""
    try:
        async for batch in sse_batches(response.aiter_bytes()):
            yield batch
    finally:
        await response.aclose()


def openai_shape(response: Any) -> bytes:
    """litellm's response or chunk as OpenAI sends it: its own extras dropped, required
    nullable fields present (``logprobs``, ``refusal``, ``content``, ``finish_reason``)."""
    payload: dict[str, Any] = response.model_dump(exclude_none=True)
    for choice in payload.get("choices") or []:
        choice.pop("provider_specific_fields", None)
        if "delta" in choice:
            choice.setdefault("finish_reason", None)
            choice["delta"].pop("provider_specific_fields", None)
            continue
        choice.setdefault("logprobs", None)
        message = choice.setdefault("message", {})
        message.pop("provider_specific_fields", None)
        message.setdefault("content", None)
        message.setdefault("refusal", None)
    return orjson.dumps(payload)


async def _litellm_payloads(stream: Any) -> AsyncGenerator[list[bytes]]:
    async for chunk in stream:
        yield [openai_shape(chunk)]
    yield [b"[DONE]"]


def _pooled(max_connections: int) -> httpx.AsyncBaseTransport:
    from functions.transport import pooled  # imports aiohttp: in a thread, at start-up

    return pooled(max_connections)


class Relay:
    """Sends chats to deployments: relayed ones over HTTP, the others through litellm.

    A relayed request goes straight to the transport (httpx's request and response
    objects, aiohttp's pool): the client layer around it (redirects, cookies, auth,
    URL merging) is nothing a relay wants, and cost about a twentieth of the
    gateway's CPU per request. Tests set ``_http`` to an ``httpx.MockTransport``.
    """

    def __init__(self, max_connections: int) -> None:
        self._http: httpx.AsyncBaseTransport | None = None  # made on first use, on the loop
        self._transport = Background(partial(_pooled, max_connections), "import-aiohttp")
        self._litellm = Background(load, "import-litellm")
        self._urls: dict[str, httpx.URL] = {}

    def start(self, deployments: Iterable[Deployment]) -> None:
        """Import aiohttp in the background, and litellm too if one of ``deployments``
        needs its translation."""
        self._transport.start()
        if any(not d.relayed for d in deployments):
            self._litellm.start()

    async def transport(self) -> httpx.AsyncBaseTransport:
        if self._http is None:
            self._http = await self._transport.get()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _url(self, api_base: str) -> httpx.URL:
        """``<api_base>/chat/completions``, parsed once per deployment."""
        url = self._urls.get(api_base)
        if url is None:
            url = self._urls[api_base] = httpx.URL(f"{api_base.rstrip('/')}/chat/completions")
        return url

    async def open(
        self,
        deployment: Deployment,
        payload: dict[str, Any],
        request_id: str,
        priority: str = "interactive",
    ) -> Opened:
        try:
            if deployment.relayed:
                return await self._open_http(deployment, payload, request_id, priority)
            return await self._open_litellm(deployment, payload)
        except (UpstreamError, UpstreamUnavailableError):
            raise
        except Exception as exc:
            raise map_upstream_exception(exc) from exc

    async def _open_http(
        self, deployment: Deployment, payload: dict[str, Any], request_id: str, priority: str
    ) -> Opened:
        headers = {"content-type": "application/json", "x-request-id": request_id}
        if deployment.location == "on_prem":  # our own node serves interactive work first
            headers["x-enclave-priority"] = priority  # the gateway's class, never the caller's
        if (parent := traceparent.get()) is not None:  # this gateway's span, W3C trace context
            headers["traceparent"] = parent
        if deployment.api_key is not None:
            headers["authorization"] = f"Bearer {deployment.api_key.get_secret_value()}"
        transport = self._http or await self.transport()
        whole = deployment.timeout_s  # as httpx.Timeout(whole, connect=...) spells it
        timeout = {"connect": deployment.connect_timeout_s, "read": whole, "write": whole}
        request = httpx.Request(
            "POST",
            self._url(deployment.api_base),
            content=orjson.dumps(payload),
            headers=headers,
            extensions={"timeout": {**timeout, "pool": whole}},
        )
        response = await transport.handle_async_request(request)
        response.request = request
        if response.status_code >= 400:
            content = await response.aread()
            await response.aclose()
            status = response.status_code
            message, code = _upstream_error(content, status, _secrets(deployment))
            if status == 429:
                raise UpstreamRateLimitedError(message, headers=_retry_after(response))
            if status >= 500 or status in DEPLOYMENT_FAULTS:
                raise UpstreamUnavailableError(message, headers=_retry_after(response))
            raise UpstreamError(message, upstream_status=status, code=code)
        if payload.get("stream"):
            return Opened(events=_sse_payloads(response))
        try:
            return Opened(body=await response.aread())
        finally:
            await response.aclose()

    async def _open_litellm(self, deployment: Deployment, payload: dict[str, Any]) -> Opened:
        params = {k: v for k, v in payload.items() if k in LITELLM_REQUEST_KWARGS}
        key = deployment.api_key.get_secret_value() if deployment.api_key else None
        litellm: ModuleType = await self._litellm.get()
        result = await litellm.acompletion(
            model=f"{deployment.provider}/{deployment.target_model}",
            api_base=deployment.api_base,
            api_key=key or "none",
            timeout=deployment.timeout_s,
            num_retries=0,
            **params,
        )
        if payload.get("stream"):
            return Opened(events=_litellm_payloads(result))
        return Opened(body=openai_shape(result))


def _retry_after(response: httpx.Response) -> dict[str, str]:
    value = response.headers.get("retry-after")
    return {"retry-after": value} if value else {}
