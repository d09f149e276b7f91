"""The relay's HTTP transport: httpx's API over aiohttp's connection pool.

Why: under load, httpcore's pool (it walks every pooled connection, asking each
socket for its state, on every request) and h11 took about half of the gateway's
CPU per relayed request; aiohttp's C-accelerated pool and parser take a fifth of
that (``just bench-compare``, in the README). ``httpx-aiohttp`` provides the
transport; the relay keeps httpx's request and response objects, so tests can
still swap in ``httpx.MockTransport``.

What this module adds is the error contract. The gateway tells a deployment that
refuses connections (down, or cold: wake it) from one that is slow (fail over),
by httpx's exception types (:func:`functions.errors.map_exception`).
``httpx-aiohttp`` maps a refused connection to ``ConnectTimeout`` (its table is
searched in order, and the broader ``ClientConnectionError`` comes first), and a
server that hangs up to a timeout too; here each aiohttp error becomes the httpx
error httpcore raises for the same event, on the request and while a body streams.

Import this module in a thread (it imports aiohttp: about a quarter of a second).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from functions import tls


def as_httpx(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error httpcore raises for the event aiohttp reported as ``exc``, or None."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, reset, unresolvable
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(message)
    return None


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:  # mapped by httpx-aiohttp: map its cause again
        cause = exc.__cause__
        better = as_httpx(cause) if cause is not None else None
        if better is None:
            raise
        raise better from cause
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # not mapped there
        better = as_httpx(exc)
        if better is None:  # pragma: no cover - every such type is mapped above
            raise
        raise better from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _mapped():
            await self._inner.aclose()


class Transport(AiohttpTransport):
    """:class:`AiohttpTransport` raising the httpx errors httpcore would."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _mapped():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response


def pooled(max_connections: int) -> Transport:
    """A transport holding at most ``max_connections``, all kept alive between requests.

    Proxies from the environment are not used: where a request goes comes from
    Settings only (aiohttp's session ignores ``HTTP(S)_PROXY`` unless told).
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return Transport(limits=limits, trust_env=False, verify=tls.context())
