"""The relay's transport (httpx's API over aiohttp) raises what httpcore would.

The gateway wakes a deployment that refuses connections and fails over from one
that is slow or hangs up, by httpx's exception types; each case here is a real
socket on 127.0.0.1 behaving badly, and the gateway's own classification of it.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from functions import tls
from functions.errors import UpstreamRefusedError, UpstreamUnreachableError, map_exception
from functions.settings import Deployment
from functions.transport import Transport, pooled
from functions.warmth import Warmth

# a socket of an event loop that asyncio.run already closed may be collected during a later
# test ("fd is not registered"): the fixtures' loops, not the transport under test
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def _collected() -> Iterator[None]:
    """Collect this test's sockets and stream writers now, under this module's filter, not
    in whichever test the garbage collector happens to run next."""
    yield
    gc.collect()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    await reader.readexactly(length)


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: nothing listens


async def _post(base: str, read_s: float = 5) -> httpx.Response:
    async with httpx.AsyncClient(transport=pooled(4), timeout=read_s) as client:
        try:
            response = await client.post(f"{base}/v1/chat/completions", content=b"{}")
            await response.aread()
            return response
        finally:
            await client.aclose()
            await asyncio.sleep(0.05)  # aiohttp closes its sockets on the loop's next turns


def test_an_answer_comes_back_whole_with_its_headers() -> None:
    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        body = '{"text": "好的"}'.encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-upstream: 1\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> httpx.Response:
        async with server(ok) as base:
            return await _post(base)

    response = asyncio.run(main())
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "1"
    assert response.json() == {"text": "好的"}


def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError) as raised:
        asyncio.run(_post(_closed_port()))
    assert isinstance(map_exception(raised.value), UpstreamRefusedError)  # down: wake it


def test_a_server_that_hangs_up_is_a_protocol_error_not_a_timeout() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        async with server(hang_up) as base:
            await _post(base)

    with pytest.raises(httpx.RemoteProtocolError) as raised:
        asyncio.run(main())
    mapped = map_exception(raised.value)
    assert type(mapped) is UpstreamUnreachableError
    assert "in time" not in mapped.message


def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(0.6)
        writer.close()

    async def main() -> None:
        async with server(silent) as base:
            await _post(base, read_s=0.3)

    with pytest.raises(httpx.ReadTimeout) as raised:
        asyncio.run(main())
    assert "in time" in map_exception(raised.value).message


def test_a_stream_cut_midway_raises_an_httpx_error_after_what_arrived() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        event = b'data: {"n": 1}\n\n'
        writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # no last chunk
        await writer.wait_closed()

    async def main() -> list[str]:
        lines: list[str] = []
        async with server(cut) as base, httpx.AsyncClient(transport=pooled(4), timeout=5) as client:
            request = client.build_request("POST", f"{base}/v1/chat/completions", content=b"{}")
            response = await client.send(request, stream=True)
            try:
                async for line in response.aiter_lines():
                    lines.append(line)
            finally:
                await response.aclose()
                await client.aclose()
                await asyncio.sleep(0.05)
        return lines

    seen: list[str] = []

    async def run() -> None:
        seen.extend(await main())

    with pytest.raises(httpx.TransportError):
        asyncio.run(run())


def test_every_upstream_client_shares_one_verifying_tls_context() -> None:
    """The relay's pool, the warmth probes and the context-length look-ups share one TLS
    context (each used to load the CA bundle at start-up), and it still verifies."""
    shared = tls.context()
    assert shared is tls.context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert pooled(2).ssl_context is shared
    node = Deployment(name="n", model="m", api_base="https://node.invalid/v1")
    warmth = Warmth([node], probe_interval_s=60, probe_timeout_s=1, wake_timeout_s=1)
    probes = warmth.client()
    transport = probes._transport  # type: ignore[attr-defined]
    assert isinstance(transport, Transport)  # the relay's kind: no httpcore for the probes
    assert transport.ssl_context is shared
    asyncio.run(probes.aclose())
