"""A client that disconnects mid-answer is charged for what ran, not refunded in full.

Before, a stream the client abandoned ended without a usage chunk, and the gateway
settled the request at 0 tokens: hanging up was a way around the token limits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.conftest import create_key, gateway_env, start
from tests.security.conftest import Recorder, rec

TPM = 60_000
PROMPT_CHARS = 40_000  # 10,000 tokens as the limiter counts them; refill is 1,000 a second


def remaining_tokens(url: str, key: str) -> int:
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "relay", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.headers["x-ratelimit-remaining-tokens"])


def test_hanging_up_is_no_way_around_the_token_limit(
    tmp_path: Path, rec_upstream: Recorder, log_dir: Path
) -> None:
    key = create_key(tmp_path, "acme", "--tpm", str(TPM))
    env = gateway_env(
        [rec("relay", "relay", rec_upstream.url)],
        ENCLAVE_DATA_DIR=str(tmp_path),
        ENCLAVE_GATEWAY_RATE_LIMIT=json.dumps({"backend": "file"}),
    )
    gateway = start("gateway", env, log_dir)
    try:
        fresh = remaining_tokens(gateway.url, key)
        long = {"role": "user", "content": "ECHO " + "y" * PROMPT_CHARS}
        body = {"model": "relay", "max_tokens": 10, "stream": True, "messages": [long]}
        headers = {"authorization": f"Bearer {key}"}
        with httpx.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        ) as answer:
            assert answer.status_code == 200
            for seen, _ in enumerate(answer.iter_lines()):
                if seen > 10:
                    break  # hang up mid-answer
        time.sleep(1)
        after = remaining_tokens(gateway.url, key)
    finally:
        gateway.stop()
    # the prompt (10,000 tokens) was charged; a few seconds of refill give back far less
    assert after < fresh - 5_000, (fresh, after)
