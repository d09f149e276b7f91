"""A gateway process that accepts JWTs from an OIDC issuer served on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import Server, deployment, gateway_env, start
from tests.functions.oidc_support import AUDIENCE, Issuer, JWKSServer, forge


def test_a_gateway_trusts_tokens_from_its_issuer_only(node: Server, log_dir: Path) -> None:
    issuer = Issuer.generate()
    with JWKSServer(issuer).running() as jwks:
        oidc = {
            "issuer": jwks.url,
            "audience": AUDIENCE,
            "jwks_url": f"{jwks.url}/jwks.json",
            "role_map": {"enclave-users": "member"},
        }
        env = gateway_env([deployment("local", node)], ENCLAVE_GATEWAY_OIDC=json.dumps(oidc))
        gateway = start("gateway", env, log_dir)
        try:

            def ask(token: str) -> httpx.Response:
                return httpx.post(
                    f"{gateway.url}/v1/chat/completions",
                    timeout=60,
                    headers={"authorization": f"Bearer {token}"},
                    json={
                        "model": "smollm2",
                        "max_tokens": 2,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )

            assert ask(issuer.token("rsa-1")).status_code == 200
            assert ask(issuer.token("ed-1")).status_code == 200
            assert ask(issuer.token("rsa-1", exp=1)).status_code == 401
            assert ask(issuer.token("rsa-1", aud="someone-else")).status_code == 401
            unsigned = forge({"alg": "none", "kid": "rsa-1"}, issuer.claims())
            assert ask(unsigned).status_code == 401
            confused = forge(
                {"alg": "HS256", "kid": "rsa-1"}, issuer.claims(), secret=issuer.rsa_public_pem()
            )
            assert ask(confused).status_code == 401
            no_role = issuer.token("rsa-1", groups=["strangers"])
            assert ask(no_role).status_code == 403
            assert gateway.logged(
                lambda line: line.get("enclave", {}).get("decisions", {}).get("auth") == "oidc"
            )
        finally:
            gateway.stop()
