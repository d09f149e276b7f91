"""Each deployment's context length: its setting, else what its ``/v1/models`` says.

A deployment's ``context_tokens`` (routing settings) wins. Otherwise an
OpenAI-compatible upstream is asked once, on the first chat planned to it, for
``GET {api_base}/models`` with the deployment's own key (never anything of the
request: I1); the entry for the deployment's upstream model gives
``context_length`` (our node, OpenRouter) or ``max_model_len`` (vLLM). The answer
is kept ``lookup_ttl_s``; a failed lookup (a node still loading, an upstream that
does not say) is unknown for ``lookup_retry_s``, and an unknown length means the
conversation is sent as it is. Concurrent first chats share one lookup.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from loguru import logger

from functions import tls
from functions.settings import Deployment
from functions.window.settings import WindowSettings

MAX_LISTING_BYTES = 1_048_576  # a model list larger than this is not read
MAX_CONTEXT = 100_000_000  # tokens; anything larger (or not a positive integer) is ignored
FIELDS = ("context_length", "max_model_len")


def context_of(listing: Any, model: str) -> int | None:
    """The context length a ``/v1/models`` body gives ``model``, if it gives one."""
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    entries = [e for e in data if isinstance(e, dict)]
    entry = next((e for e in entries if e.get("id") == model), None)
    if entry is None and len(entries) == 1:  # a node serves one model, whatever its name
        entry = entries[0]
    for field in FIELDS:
        value = entry.get(field) if entry is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_CONTEXT:
            return value
    return None


class ContextLengths:
    def __init__(self, settings: WindowSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client  # made on the first look-up (TLS: functions/tls.py)
        self._known: dict[str, tuple[int | None, float]] = {}  # name -> (length, valid until)
        self._pending: dict[str, asyncio.Task[int | None]] = {}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def of(self, deployment: Deployment) -> int | None:
        if deployment.context_tokens is not None:
            return deployment.context_tokens
        if not deployment.is_openai_compatible:
            return None
        known = self._known.get(deployment.name)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        task = self._pending.get(deployment.name)
        if task is None:
            task = asyncio.ensure_future(self._look_up(deployment))
            self._pending[deployment.name] = task
            task.add_done_callback(lambda _: self._pending.pop(deployment.name, None))
        return await asyncio.shield(task)  # one caller gone must not cancel the others'

    async def _look_up(self, deployment: Deployment) -> int | None:
        settings = self._settings
        answered = False  # a model list that names no length is an answer: kept as long
        try:
            length = context_of(await self._listing(deployment), deployment.target_model)
            answered = True
        except (httpx.HTTPError, orjson.JSONDecodeError, ValueError) as exc:
            logger.info("context length unknown", deployment=deployment.name, error=str(exc))
            length = None
        ttl = settings.lookup_ttl_s if answered else settings.lookup_retry_s
        self._known[deployment.name] = (length, time.monotonic() + ttl)
        return length

    async def _listing(self, deployment: Deployment) -> Any:
        headers = {"accept": "application/json"}
        if deployment.api_key is not None:
            headers["authorization"] = f"Bearer {deployment.api_key.get_secret_value()}"
        timeout = httpx.Timeout(
            self._settings.lookup_timeout_s, connect=deployment.connect_timeout_s
        )
        url = f"{deployment.api_base.rstrip('/')}/models"
        if self._client is None:
            self._client = tls.upstream_client()
        async with self._client.stream("GET", url, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                raise ValueError(f"/models answered {response.status_code}")
            body = b""
            async for part in response.aiter_bytes():
                body += part
                if len(body) > MAX_LISTING_BYTES:
                    raise ValueError("/models answered more than a model list")
        return orjson.loads(body)
