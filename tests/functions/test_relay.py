"""The relay's upstream pools: ``max_connections`` in all, filled evenly, and every
request's place given back however it ends (answer, stream, refusal, failure)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.errors import UpstreamUnavailableError
from functions.relay import POOL_SHARDS, Relay
from functions.settings import Deployment
from tests.conftest import Server, free_port, launch


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The echoing upstream (a test double standing in for a model server)."""
    logs, port = tmp_path_factory.mktemp("relay-logs"), free_port()
    record = logs / "requests.jsonl"
    env = {**os.environ, "ECHO_RECORD": str(record)}
    server = launch("echo", ["tests.e2e.echo_upstream", str(port)], env, logs, port)
    yield server
    server.stop()


def test_the_pools_hold_max_connections_in_all_and_fill_evenly() -> None:
    relay = Relay(max_connections=20)
    assert len(relay._clients) == POOL_SHARDS and sum(relay._sizes) == 20
    for _ in range(20):
        relay._pick()
    assert relay._busy == relay._sizes  # each pool full only once all are
    assert len(Relay(max_connections=3)._clients) == 3  # never a pool of no connection


def _payload(stream: bool) -> dict[str, object]:
    return {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def test_every_request_gives_its_place_back(echo: Server, tmp_path: Path) -> None:
    async def main() -> None:
        relay = Relay(max_connections=16)
        deployment = Deployment(name="e", model="echo", api_base=f"{echo.url}/v1")
        try:
            opened = await relay.open(deployment, _payload(False), "r1")
            assert opened.body is not None and relay._busy == [0] * POOL_SHARDS
            opened = await relay.open(deployment, _payload(True), "r2")
            assert opened.events is not None and sum(relay._busy) == 1  # held while it streams
            payloads = [payload async for payload in opened.events]
            assert payloads[-1] == b"[DONE]" and relay._busy == [0] * POOL_SHARDS
            down = Deployment(name="d", model="echo", api_base=f"http://127.0.0.1:{free_port()}/v1")
            with pytest.raises(UpstreamUnavailableError):
                await relay.open(down, _payload(False), "r3")
            assert relay._busy == [0] * POOL_SHARDS
        finally:
            await relay.aclose()

    asyncio.run(main())
