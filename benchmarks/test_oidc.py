"""What verifying one OIDC bearer JWT costs, with the issuer's keys already cached.

Each round verifies a batch of tokens in one coroutine, so the event loop's own
start-up is not counted; figures are per token. The JWKS is served by the same
loopback server the tests use, and fetched once, before timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from benchmarks.conftest import report
from functions.errors import AuthenticationError
from functions.oidc import JWKSCache, OIDCSettings, OIDCVerifier, looks_like_jwt
from tests.functions.oidc_support import AUDIENCE, ROLE_MAP, Issuer, JWKSServer

BATCH = 100


class Bench:
    """A verifier with a warm key cache, on an event loop of its own."""

    def __init__(self, server: JWKSServer) -> None:
        self.issuer = server.issuer
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(trust_env=False)
        settings = OIDCSettings(
            issuer=server.url,
            audience=AUDIENCE,
            jwks_url=server.url + "/jwks.json",
            role_map=ROLE_MAP,
            algorithms=["RS256", "ES256", "EdDSA"],
        )
        self.verifier = OIDCVerifier(settings, JWKSCache(settings, self.client))
        for kid in ("rsa-1", "ec-1", "ed-1"):  # warm the cache
            self.loop.run_until_complete(self.verifier.verify(self.issuer.token(kid)))

    def batch(self, token: str, valid: bool = True) -> Callable[[], None]:
        async def run() -> None:
            for _ in range(BATCH):
                try:
                    await self.verifier.verify(token)
                except AuthenticationError:
                    assert not valid
                else:
                    assert valid

        return lambda: self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with JWKSServer(Issuer.generate()).running() as server:
        b = Bench(server)
        yield b
        b.close()
        assert server.fetches == 1


def per_token(benchmark: Any, label: str) -> None:
    stats = benchmark.stats.stats
    report(benchmark, label, p50_us=stats.median * 1e6 / BATCH, mean_us=stats.mean * 1e6 / BATCH)


@pytest.mark.parametrize(("alg", "kid"), [("RS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")])
def test_verify_warm_cache(benchmark: Any, bench: Bench, alg: str, kid: str) -> None:
    benchmark.pedantic(bench.batch(bench.issuer.token(kid)), rounds=30, warmup_rounds=3)
    per_token(benchmark, f"oidc verify {alg}")


def test_refuse_bad_signature_rs256(benchmark: Any, bench: Bench) -> None:
    """A forged token costs what a valid one does: the signature check is the work."""
    header, payload, _ = bench.issuer.token().split(".")
    forged = f"{header}.{payload}.{bench.issuer.token().split('.')[2][::-1]}"
    benchmark.pedantic(bench.batch(forged, valid=False), rounds=30, warmup_rounds=3)
    per_token(benchmark, "oidc refuse forged RS256")


def test_looks_like_jwt(benchmark: Any, bench: Bench) -> None:
    token = bench.issuer.token()

    def run() -> None:
        for _ in range(BATCH):
            assert looks_like_jwt(token)

    benchmark.pedantic(run, rounds=30, warmup_rounds=3)
    per_token(benchmark, "looks_like_jwt")
