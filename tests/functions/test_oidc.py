"""OIDC bearer JWTs, verified against a real JWKS server on 127.0.0.1.

Every attack below changes one thing of a token that is otherwise valid (the
control case shows the untouched token is accepted), and every one is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from functions.auth import bearer_token
from functions.errors import (
    AuthenticationError,
    EnclaveError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from functions.oidc import Identity, JWKSCache, OIDCSettings, OIDCVerifier, looks_like_jwt
from functions.oidc.jwks import parse_jwks
from functions.oidc.verifier import refusal
from tests.conftest import free_port
from tests.functions.oidc_support import (
    AUDIENCE,
    ROLE_MAP,
    Clock,
    Issuer,
    JWKSServer,
    b64,
    b64_json,
    forge,
    public_jwk,
)

Outcome = Identity | EnclaveError


@pytest.fixture(scope="module")
def idp() -> Iterator[JWKSServer]:
    with JWKSServer(Issuer.generate()).running() as server:
        yield server


@pytest.fixture
def server(idp: JWKSServer) -> Iterator[JWKSServer]:
    keys, algs = dict(idp.issuer.keys), dict(idp.issuer.algs)
    idp.reset()
    yield idp
    idp.issuer.keys, idp.issuer.algs = keys, algs


@pytest.fixture
def issuer(server: JWKSServer) -> Issuer:
    return server.issuer


def settings_for(server: JWKSServer, **changes: Any) -> OIDCSettings:
    base: dict[str, Any] = {
        "issuer": server.url,
        "audience": AUDIENCE,
        "jwks_url": server.url + "/jwks.json",
        "role_map": ROLE_MAP,
    }
    return OIDCSettings(**{**base, **changes})


@asynccontextmanager
async def verifier(
    settings: OIDCSettings, clock: Clock | None = None
) -> AsyncIterator[OIDCVerifier]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield OIDCVerifier(settings, JWKSCache(settings, client, clock=clock or Clock()))


async def attempt(v: OIDCVerifier, token: str) -> Outcome:
    try:
        return await v.verify(token)
    except EnclaveError as exc:
        return exc


def verify(settings: OIDCSettings, *tokens: str) -> list[Outcome]:
    async def run() -> list[Outcome]:
        async with verifier(settings) as v:
            return [await attempt(v, t) for t in tokens]

    return asyncio.run(run())


def accepted(outcome: Outcome) -> Identity:
    assert isinstance(outcome, Identity), outcome
    return outcome


def refused(outcome: Outcome, kind: type[EnclaveError] = AuthenticationError) -> EnclaveError:
    assert isinstance(outcome, kind), outcome
    return outcome


# ---- valid tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_a_valid_token_of_each_key_type_is_accepted(server: JWKSServer, kid: str) -> None:
    (outcome,) = verify(settings_for(server), server.issuer.token(kid))
    identity = accepted(outcome)
    assert (identity.subject, identity.tenant, identity.role) == ("user-42", "acme", "member")
    assert identity.issuer == server.url and identity.claims["aud"] == AUDIENCE
    assert identity.key_id.startswith("oidc-") and "user-42" not in identity.key_id


def test_the_strongest_mapped_role_wins(server: JWKSServer, issuer: Issuer) -> None:
    groups = ["other", "enclave-users", "enclave-admins", "enclave-auditors"]
    roles = verify(
        settings_for(server),
        issuer.token(groups=groups),
        issuer.token(groups=["enclave-users", "enclave-auditors"]),
        issuer.token(groups="enclave-auditors"),  # a single string is one group
    )
    assert [accepted(r).role for r in roles] == ["admin", "auditor", "auditor"]


def test_nested_and_namespaced_claims(server: JWKSServer, issuer: Issuer) -> None:
    nested = settings_for(server, roles_claim="realm_access.roles", tenant_claim="org.id")
    token = issuer.token(realm_access={"roles": ["enclave-admins"]}, org={"id": "globex"})
    identity = accepted(verify(nested, token)[0])
    assert (identity.tenant, identity.role) == ("globex", "admin")
    named = settings_for(server, roles_claim="https://enclave.example/roles")
    token = issuer.token(**{"https://enclave.example/roles": ["enclave-auditors"]})
    assert accepted(verify(named, token)[0]).role == "auditor"


def test_no_mapped_role_is_403_unless_there_is_a_default(
    server: JWKSServer, issuer: Issuer
) -> None:
    tokens = [issuer.token(groups=["strangers"]), issuer.token(groups=None), issuer.token(groups=7)]
    for outcome in verify(settings_for(server), *tokens):
        assert refused(outcome, PermissionDeniedError).status_code == 403
    for outcome in verify(settings_for(server, default_role="member"), *tokens):
        assert accepted(outcome).role == "member"


def test_tenant_is_required_unless_there_is_a_default(server: JWKSServer, issuer: Issuer) -> None:
    bad = [issuer.token(tenant=None), issuer.token(tenant="../etc"), issuer.token(tenant=["a"])]
    for outcome in verify(settings_for(server), *bad):
        refused(outcome, PermissionDeniedError)
    outcome = verify(settings_for(server, default_tenant="shared"), issuer.token(tenant=None))[0]
    assert accepted(outcome).tenant == "shared"


def test_clock_skew_within_leeway_is_accepted(server: JWKSServer, issuer: Issuer) -> None:
    now = issuer.claims()["iat"]
    tokens = [issuer.token(exp=now - 10), issuer.token(nbf=now + 10), issuer.token(iat=now + 10)]
    for outcome in verify(settings_for(server, leeway_s=30), *tokens):
        accepted(outcome)


def test_audience_may_be_one_of_several(server: JWKSServer, issuer: Issuer) -> None:
    settings = settings_for(server, audience=["other-api", AUDIENCE])
    for outcome in verify(settings, issuer.token(), issuer.token(aud=["x", AUDIENCE])):
        accepted(outcome)


def test_ps256_when_allowed(server: JWKSServer, issuer: Issuer) -> None:
    token = issuer.token("rsa-1", alg="PS256")
    refused(verify(settings_for(server), token)[0])
    accepted(verify(settings_for(server, algorithms=["PS256"]), token)[0])


def test_an_algorithm_left_out_of_the_allow_list_is_refused(server: JWKSServer) -> None:
    tokens = [server.issuer.token(kid) for kid in ("rsa-1", "ec-1", "ed-1")]
    outcomes = verify(settings_for(server, algorithms=["ES256"]), *tokens)
    assert [isinstance(o, Identity) for o in outcomes] == [False, True, False]


# ---- the attack list -------------------------------------------------------------------

Forger = Callable[[Issuer], str]


def _header(issuer: Issuer, token: str, **changes: Any) -> str:
    header = {**jwt.get_unverified_header(token), **changes}
    _, payload, signature = token.split(".")
    return f"{b64_json({k: v for k, v in header.items() if v is not None})}.{payload}.{signature}"


def _payload(issuer: Issuer, token: str, **changes: Any) -> str:
    header, _, signature = token.split(".")
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return f"{header}.{b64_json(claims)}.{signature}"


def _none(alg: str, signed: bool) -> Forger:
    def make(issuer: Issuer) -> str:
        token = forge({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, issuer.claims())
        return token + issuer.token().split(".")[2] if signed else token

    return make


def _hs256_with(secret: Callable[[Issuer], bytes]) -> Forger:
    return lambda i: forge({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, i.claims(), secret(i))


def _signed_by_stranger(embed: bool = False) -> Forger:
    def make(issuer: Issuer) -> str:
        stranger = ec.generate_private_key(ec.SECP256R1())
        headers: dict[str, Any] = {"kid": "ec-1"}
        if embed:  # the token carries the stranger's key, hoping it is used
            headers["jwk"] = public_jwk(stranger, "ec-1")
        return jwt.encode(issuer.claims(), stranger, "ES256", headers)

    return make


NOW_PLUS = 3600
ATTACKS: dict[str, Forger] = {
    "alg-none-unsigned": _none("none", signed=False),
    "alg-none-with-signature": _none("none", signed=True),
    "alg-None-unsigned": _none("None", signed=False),
    "alg-NONE-with-signature": _none("NONE", signed=True),
    "alg-empty": _none("", signed=True),
    "hs256-rsa-public-pem": _hs256_with(lambda i: i.rsa_public_pem()),
    "hs256-rsa-public-jwk": _hs256_with(lambda i: json.dumps(i.jwks()["keys"][0]).encode()),
    "expired": lambda i: i.token(exp=i.claims()["iat"] - NOW_PLUS),
    "expired-beyond-leeway": lambda i: i.token(exp=i.claims()["iat"] - 31),
    "not-yet-valid": lambda i: i.token(nbf=i.claims()["iat"] + NOW_PLUS),
    "issued-in-the-future": lambda i: i.token(iat=i.claims()["iat"] + NOW_PLUS),
    "exp-as-string": lambda i: i.token(exp=str(i.claims()["exp"])),
    "exp-as-bool": lambda i: i.token(exp=True),
    "missing-exp": lambda i: i.token(exp=None),
    "wrong-iss": lambda i: i.token(iss="https://evil.example"),
    "iss-with-suffix": lambda i: i.token(iss=i.url + "/"),
    "iss-prefix": lambda i: i.token(iss=i.url[:-1]),
    "missing-iss": lambda i: i.token(iss=None),
    "wrong-aud": lambda i: i.token(aud="another-api"),
    "aud-substring": lambda i: i.token(aud=AUDIENCE[:-1]),
    "missing-aud": lambda i: i.token(aud=None),
    "missing-sub": lambda i: i.token(sub=None),
    "empty-sub": lambda i: i.token(sub=""),
    "unknown-kid": lambda i: _header(i, i.token(), kid="rsa-9"),
    "missing-kid": lambda i: _header(i, i.token(), kid=None),
    "kid-not-a-string": lambda i: _header(i, i.token(), kid=["rsa-1"]),
    "tampered-payload-role": lambda i: _payload(i, i.token(), groups=["enclave-admins"]),
    "tampered-payload-tenant": lambda i: _payload(i, i.token(), tenant="globex"),
    "tampered-payload-exp": lambda i: _payload(i, i.token(exp=1), exp=i.claims()["exp"]),
    "tampered-header-kid": lambda i: _header(i, i.token("ec-1"), kid="ed-1"),
    "tampered-header-alg-rs-to-es": lambda i: _header(i, i.token(), alg="ES256"),
    "tampered-header-typ": lambda i: _header(i, i.token(), typ="JWE"),
    "es256-header-with-rsa-kid": lambda i: jwt.encode(
        i.claims(), i.keys["ec-1"], "ES256", {"kid": "rsa-1"}
    ),
    "eddsa-header-with-ec-kid": lambda i: jwt.encode(
        i.claims(), i.keys["ed-1"], "EdDSA", {"kid": "ec-1"}
    ),
    "signed-by-a-stranger": _signed_by_stranger(),
    "stranger-key-embedded-in-header": _signed_by_stranger(embed=True),
    "duplicate-alg-in-header": lambda i: (
        b64(b'{"alg":"RS256","kid":"rsa-1","alg":"none"}') + "." + i.token().split(".", 1)[1]
    ),
    "crit-extension": lambda i: jwt.encode(
        i.claims(), i.keys["rsa-1"], "RS256", {"kid": "rsa-1", "crit": ["exp"], "exp": 1}
    ),
    "signature-stripped": lambda i: i.token().rsplit(".", 1)[0] + ".",
    "signature-truncated": lambda i: i.token()[:-4],
    "two-segments": lambda i: i.token().rsplit(".", 1)[0],
    "four-segments": lambda i: i.token() + ".AAAA",
    "bad-base64-header": lambda i: "!!" + i.token(),
    "bad-base64-padding": lambda i: "A" + i.token(),
    "non-json-header": lambda i: b64_json("x")[:-1] + "." + i.token().split(".", 1)[1],
    "header-not-an-object": lambda i: b64_json(["RS256"]) + "." + i.token().split(".", 1)[1],
    "payload-not-json": lambda i: (lambda h, _, s: f"{h}.bm90IGpzb24.{s}")(*i.token().split(".")),
    "huge-token": lambda i: i.token(padding="x" * 9000),
    "whitespace-inside": lambda i: i.token().replace(".", " .", 1),
    "empty": lambda i: "",
}


def test_the_control_token_is_accepted(server: JWKSServer) -> None:
    accepted(verify(settings_for(server), server.issuer.token())[0])


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_is_refused_without_echoing_the_token(server: JWKSServer, name: str) -> None:
    token = ATTACKS[name](server.issuer)
    error = refused(verify(settings_for(server), token)[0])
    assert error.status_code == 401 and error.code == "invalid_api_key"
    for segment in token.split("."):
        assert len(segment) < 8 or segment not in error.message
    assert "acme" not in error.message and "user-42" not in error.message


def test_two_authorization_headers_never_reach_the_verifier(server: JWKSServer) -> None:
    token = server.issuer.token()
    with pytest.raises(AuthenticationError):  # the auth step refuses them first
        bearer_token([f"Bearer {token}", f"Bearer {token}"])
    assert bearer_token([f"Bearer {token}"]).decode() == token


def test_looks_like_jwt(issuer: Issuer) -> None:
    assert all(looks_like_jwt(issuer.token(kid)) for kid in ("rsa-1", "ec-1", "ed-1"))
    assert looks_like_jwt(ATTACKS["alg-none-unsigned"](issuer))  # routed to OIDC, refused there
    for not_jwt in ["sk-test-" + "a" * 24, "", "a.b", "a.b.c", ATTACKS["non-json-header"](issuer)]:
        assert not looks_like_jwt(not_jwt)
    assert not looks_like_jwt(forge({"typ": "JWT"}, {"sub": "x"}))  # no alg


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (jwt.ExpiredSignatureError(), "expired"),
        (jwt.ImmatureSignatureError(), "not valid yet"),
        (jwt.InvalidAudienceError(), "not issued for this service"),
        (jwt.InvalidIssuerError(), "trusted issuer"),
        (jwt.MissingRequiredClaimError("exp"), "lacks a required claim"),
        (jwt.InvalidSignatureError(), "signature is invalid"),
        (jwt.InvalidAlgorithmError(), "algorithm is not allowed"),
        (jwt.InvalidKeyError(), "signing key is not acceptable"),
        (jwt.DecodeError("secret token bits"), "malformed"),
        (jwt.InvalidTokenError("secret token bits"), "malformed"),
    ],
)
def test_each_library_error_is_mapped_by_type(exc: jwt.PyJWTError, status: str) -> None:
    error = refusal(exc)
    assert isinstance(error, AuthenticationError) and status in error.message
    assert "secret" not in error.message


# ---- the key set: cache, refresh, rotation, failures -----------------------------------


def test_many_verifications_fetch_the_keys_once(server: JWKSServer, issuer: Issuer) -> None:
    tokens = [issuer.token(kid) for kid in ("rsa-1", "ec-1", "ed-1")] * 10
    assert all(isinstance(o, Identity) for o in verify(settings_for(server), *tokens))
    assert server.fetches == 1


def test_concurrent_verifications_on_a_cold_cache_share_one_fetch(
    server: JWKSServer, issuer: Issuer
) -> None:
    async def run() -> list[Outcome]:
        async with verifier(settings_for(server)) as v:
            return await asyncio.gather(*(attempt(v, issuer.token()) for _ in range(20)))

    assert all(isinstance(o, Identity) for o in asyncio.run(run()))
    assert server.fetches == 1


def test_unknown_kid_refetches_once_and_no_more_than_the_rate_limit(
    server: JWKSServer, issuer: Issuer
) -> None:
    clock = Clock()

    async def run() -> None:
        async with verifier(settings_for(server, jwks_min_refresh_s=10), clock) as v:
            accepted(await attempt(v, issuer.token()))
            assert server.fetches == 1
            clock.advance(11)
            refused(await attempt(v, ATTACKS["unknown-kid"](issuer)))
            assert server.fetches == 2  # one refetch, in case the keys rotated
            refused(await attempt(v, _header(issuer, issuer.token(), kid="rsa-8")))
            assert server.fetches == 2  # within jwks_min_refresh_s: no refetch
            clock.advance(11)
            refused(await attempt(v, _header(issuer, issuer.token(), kid="rsa-7")))
            assert server.fetches == 3

    asyncio.run(run())


def test_a_rotated_key_is_found_by_refetching(server: JWKSServer, issuer: Issuer) -> None:
    clock = Clock()

    async def run() -> None:
        async with verifier(settings_for(server), clock) as v:
            old = issuer.token()
            accepted(await attempt(v, old))
            issuer.add("ec-2", ec.generate_private_key(ec.SECP256R1()), "ES256")
            del issuer.keys["rsa-1"]
            clock.advance(11)
            accepted(await attempt(v, issuer.token("ec-2")))
            assert server.fetches == 2
            refused(await attempt(v, old))  # rsa-1 was withdrawn: the refetch dropped it

    asyncio.run(run())


@pytest.mark.parametrize("mode", ["error", "garbage", "nokeys"])
def test_keys_that_cannot_be_had_fail_closed(server: JWKSServer, issuer: Issuer, mode: str) -> None:
    server.mode = mode
    for outcome in verify(settings_for(server), issuer.token(), issuer.token("ec-1")):
        assert refused(outcome, ServiceUnavailableError).status_code == 503
    assert server.fetches == 1  # the failure is not retried within jwks_min_refresh_s


def test_an_unreachable_jwks_fails_closed(server: JWKSServer, issuer: Issuer) -> None:
    closed = settings_for(server, jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json")
    refused(verify(closed, issuer.token())[0], ServiceUnavailableError)


def test_a_slow_jwks_fails_closed_within_the_fetch_timeout(
    server: JWKSServer, issuer: Issuer
) -> None:
    server.mode = "slow"
    started = time.monotonic()
    refused(
        verify(settings_for(server, fetch_timeout_s=0.2), issuer.token())[0],
        ServiceUnavailableError,
    )
    assert time.monotonic() - started < 0.9


def test_expired_keys_are_never_used_when_the_refresh_fails(
    server: JWKSServer, issuer: Issuer
) -> None:
    clock = Clock()

    async def run() -> None:
        async with verifier(settings_for(server, jwks_cache_s=60), clock) as v:
            accepted(await attempt(v, issuer.token()))
            server.mode = "error"
            clock.advance(30)
            accepted(await attempt(v, issuer.token()))  # still fresh: no fetch
            clock.advance(31)
            refused(await attempt(v, issuer.token()), ServiceUnavailableError)
            server.mode = "ok"
            refused(await attempt(v, issuer.token()), ServiceUnavailableError)  # rate-limited
            clock.advance(10)
            accepted(await attempt(v, issuer.token()))
            assert server.fetches == 3

    asyncio.run(run())


def test_a_failed_refetch_keeps_the_fresh_keys(server: JWKSServer, issuer: Issuer) -> None:
    clock = Clock()

    async def run() -> None:
        async with verifier(settings_for(server), clock) as v:
            accepted(await attempt(v, issuer.token()))
            server.mode = "error"
            clock.advance(11)
            refused(await attempt(v, ATTACKS["unknown-kid"](issuer)), ServiceUnavailableError)
            accepted(await attempt(v, issuer.token()))

    asyncio.run(run())


def test_discovery_finds_the_jwks(server: JWKSServer, issuer: Issuer) -> None:
    accepted(verify(settings_for(server, jwks_url=None), issuer.token())[0])
    server.discovery_issuer = "https://evil.example"
    refused(verify(settings_for(server, jwks_url=None), issuer.token())[0], ServiceUnavailableError)


def test_unusable_keys_are_left_out_of_the_set(issuer: Issuer) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    k256 = ec.generate_private_key(ec.SECP256K1())
    rsa_key, ec_key = issuer.keys["rsa-1"], issuer.keys["ec-1"]
    private = {**public_jwk(ec_key, "private"), "d": "AAAA"}
    jwks = {
        "keys": [
            public_jwk(rsa_key, "good-rsa"),
            public_jwk(rsa_key, "enc", use="enc"),
            public_jwk(rsa_key, "no-verify", key_ops=["encrypt"]),
            public_jwk(rsa_key, "wrong-alg", alg="ES256"),
            public_jwk(rsa_key, "hmac-alg", alg="HS256"),
            public_jwk(rsa_key, "ps-only", alg="PS256"),
            public_jwk(small, "small-rsa"),
            public_jwk(k256, "secp256k1"),
            private,
            public_jwk(ec_key, "twice"),
            public_jwk(rsa_key, "twice"),
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"},
            {"kid": "no-kty"},
            "not-an-object",
        ]
    }
    keys = parse_jwks(json.dumps(jwks).encode(), ["RS256", "ES256", "PS256"])
    assert set(keys) == {"good-rsa", "ps-only"}
    assert keys["good-rsa"].algorithms == ("RS256", "PS256")
    assert keys["ps-only"].algorithms == ("PS256",)


# ---- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"algorithms": ["none"]},
        {"algorithms": ["HS256"]},
        {"algorithms": ["RS256", "HS256"]},
        {"algorithms": ["RS256", "hs512"]},
        {"algorithms": ["ES256K"]},
        {"algorithms": []},
        {"issuer": "http://idp.example.com"},
        {"jwks_url": "ftp://127.0.0.1/jwks"},
        {"audience": ""},
        {"audience": []},
        {"jwks_cache_s": 5, "jwks_min_refresh_s": 10},
        {"role_map": {"admins": "root"}},
        {"default_tenant": "../x"},
    ],
)
def test_unsafe_settings_are_refused(changes: dict[str, Any]) -> None:
    base = {"issuer": "https://idp.example.com", "audience": AUDIENCE}
    with pytest.raises(ValidationError):
        OIDCSettings(**{**base, **changes})


def test_default_settings() -> None:
    settings = OIDCSettings(issuer="https://idp.example.com", audience=AUDIENCE)
    assert settings.algorithms == ["RS256", "ES256", "EdDSA"]
    assert (settings.leeway_s, settings.jwks_cache_s, settings.jwks_min_refresh_s) == (30, 300, 10)
    assert settings.jwks_url is None and settings.audiences == [AUDIENCE]
