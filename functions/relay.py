"""Sending a chat request to one deployment, and relaying what comes back.

Two paths, one contract. OpenAI-compatible upstreams get the request as JSON
bytes over a pooled httpx client, and their SSE events are passed on one by one
as they arrive. Other providers go through ``litellm.acompletion``, which
translates both ways. Either way :meth:`Relay.open` raises
:class:`UpstreamUnavailableError` when the deployment itself failed (refused,
timed out, 5xx, 429, misconfigured), so the caller can fail over, and
:class:`UpstreamError` when the upstream refused the request as invalid.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from functions.errors import (
    UpstreamError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
    map_exception,
)
from functions.llm import litellm
from functions.settings import Deployment

# statuses that mean "this deployment cannot serve now", not "this request is wrong"
_DEPLOYMENT_FAULTS = frozenset({401, 403, 404, 408, 429})


@dataclass(slots=True)
class Opened:
    """An upstream that accepted the request: either a whole body or a stream of SSE payloads."""

    body: bytes | None = None
    events: AsyncGenerator[bytes] | None = None
    status: int = 200


def _upstream_message(content: bytes, status: int) -> str:
    try:
        error = orjson.loads(content)["error"]
        return str(error["message"] if isinstance(error, dict) else error)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"The model server answered {status}."


async def _sse_payloads(response: httpx.Response) -> AsyncGenerator[bytes]:
    """The ``data:`` payloads of an SSE stream, each as soon as its event is complete."""
    try:
        data: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                yield "\n".join(data).encode()
                data = []
        if data:
            yield "\n".join(data).encode()
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


async def _litellm_payloads(stream: Any) -> AsyncGenerator[bytes]:
    async for chunk in stream:
        yield openai_shape(chunk)
    yield b"[DONE]"


class Relay:
    def __init__(self, max_connections: int) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=None,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def open(
        self, deployment: Deployment, payload: dict[str, Any], request_id: str
    ) -> Opened:
        try:
            if deployment.relayed:
                return await self._open_http(deployment, payload, request_id)
            return await self._open_litellm(deployment, payload)
        except (UpstreamError, UpstreamUnavailableError):
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    async def _open_http(
        self, deployment: Deployment, payload: dict[str, Any], request_id: str
    ) -> Opened:
        headers = {"content-type": "application/json", "x-request-id": request_id}
        if deployment.api_key is not None:
            headers["authorization"] = f"Bearer {deployment.api_key.get_secret_value()}"
        request = self._client.build_request(
            "POST",
            f"{deployment.api_base.rstrip('/')}/chat/completions",
            content=orjson.dumps(payload),
            headers=headers,
            timeout=httpx.Timeout(deployment.timeout_s, connect=deployment.connect_timeout_s),
        )
        response = await self._client.send(request, stream=True)
        if response.status_code >= 400:
            content = await response.aread()
            await response.aclose()
            message = _upstream_message(content, response.status_code)
            if response.status_code >= 500 or response.status_code in _DEPLOYMENT_FAULTS:
                raise UpstreamUnavailableError(message, headers=_retry_after(response))
            raise UpstreamError(message, upstream_status=response.status_code)
        if payload.get("stream"):
            return Opened(events=_sse_payloads(response))
        try:
            return Opened(body=await response.aread())
        finally:
            await response.aclose()

    async def _open_litellm(self, deployment: Deployment, payload: dict[str, Any]) -> Opened:
        params = {k: v for k, v in payload.items() if k != "model"}
        key = deployment.api_key.get_secret_value() if deployment.api_key else None
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


def _classify(exc: Exception) -> UpstreamError | UpstreamUnavailableError:
    """httpx and litellm failures, by type and status code."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.exceptions.APIConnectionError | litellm.exceptions.Timeout):
        return UpstreamUnreachableError("The model server could not be reached.")
    if isinstance(status, int) and 400 <= status < 500 and status not in _DEPLOYMENT_FAULTS:
        return UpstreamError("The model server refused the request.", upstream_status=status)
    mapped = map_exception(exc)
    if isinstance(mapped, UpstreamUnavailableError):
        return mapped
    return UpstreamUnavailableError("The model server failed.")
