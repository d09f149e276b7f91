"""A/B experiments, feedback, the report and the dataset export, through real gateways.

Two recording upstreams (test doubles for two model servers, ``m1`` and ``m2``) stand
behind two gateway processes that share one data directory, as two replicas behind a
load balancer would: the experiment ``chat`` sends 90 % of its callers to ``m1``
(variant ``a``) and 10 % to ``m2`` (``b``). Clients are the official ``openai`` SDK
and plain HTTP; the report and the export are ``enclave`` run as an operator runs it.
Content capture is on, so the export reads real captured, encrypted content.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.conftest import API_KEY, ROOT, Server, child_env, create_key, gateway_env, start
from tests.security.conftest import Recorder, rec, start_recorder

EXPERIMENTS = {
    "chat": {
        "variants": [
            {"name": "a", "model": "m1", "weight": 90},
            {"name": "b", "model": "m2", "weight": 10},
        ]
    }
}
USERS = 400  # distinct callers through the first gateway
KEK = base64.b64encode(bytes(range(32))).decode()
PHONE, EMAIL = "13812345678", "jane.roe@example.org"  # the filter's PHONE: a mainland mobile


@dataclass
class Setup:
    data: Path
    first: Server
    second: Server
    m1: Recorder
    m2: Recorder
    other_key: str  # a member of tenant "other"
    env: dict[str, str] = field(default_factory=dict)

    def sdk(self, server: Server, key: str = API_KEY) -> OpenAI:
        return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)

    def enclave(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``enclave ARGS…`` with the gateways' own settings, as their operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "infra.cli", *args],
            env=child_env(**self.env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def setup(log_dir: Path) -> Iterator[Setup]:
    m1, m2 = start_recorder("m1", log_dir), start_recorder("m2", log_dir)
    data = log_dir / "data-experiments"
    other_key = create_key(data, "other")
    env = {
        **gateway_env([rec("up-m1", "m1", m1.url), rec("up-m2", "m2", m2.url)]),
        "ENCLAVE_DATA_DIR": str(data),
        "ENCLAVE_GATEWAY_EXPERIMENTS": json.dumps(EXPERIMENTS),
        "ENCLAVE_AUDIT_CAPTURE_CONTENT": "true",
        "ENCLAVE_AUDIT_KEK": json.dumps({"k1": KEK}),
        "ENCLAVE_AUDIT_ACTIVE_KEK": "k1",
        "ENCLAVE_CACHE_BACKEND": "off",
    }
    first = start("gateway", env, log_dir)
    second = start("gateway", env, log_dir)  # started after: the local audit keys exist
    yield Setup(data, first, second, m1, m2, other_key, {k: v for k, v in env.items()})
    for server in (first, second, m1.server, m2.server):
        server.stop()


@dataclass
class Traffic:
    """What the first gateway answered the 400 callers: variant and usage per user."""

    variants: dict[str, str]
    tokens_in: Counter[str]
    request_ids: dict[str, str]


@pytest.fixture(scope="module")
def traffic(setup: Setup) -> Traffic:
    variants: dict[str, str] = {}
    tokens: Counter[str] = Counter()
    ids: dict[str, str] = {}
    with setup.sdk(setup.first) as sdk:
        for i in range(USERS):
            user = f"user-{i}"
            raw = sdk.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hello"}], user=user
            )
            answer = raw.parse()
            variants[user] = raw.headers["x-enclave-variant"]
            ids[user] = raw.headers["x-request-id"]
            assert answer.usage is not None
            tokens[variants[user]] += answer.usage.prompt_tokens
    return Traffic(variants, tokens, ids)


def test_split_is_within_the_binomial_bounds(setup: Setup, traffic: Traffic) -> None:
    """400 distinct callers at 90/10: b's share lies in the 99.9 % binomial interval
    (normal approximation, z = 3.29), and each variant's calls reached its model only."""
    b = sum(v == "b" for v in traffic.variants.values())
    half = 3.29 * math.sqrt(USERS * 0.1 * 0.9)
    assert USERS * 0.1 - half <= b <= USERS * 0.1 + half, b
    assert set(traffic.variants.values()) == {"a", "b"}
    m1_users = [body.get("user") for body in setup.m1.bodies()]
    m2_users = [body.get("user") for body in setup.m2.bodies()]
    assert {body["model"] for body in setup.m1.bodies()} == {"rec"}  # the deployment's name
    assert sorted(u for u in m2_users if u) == sorted(
        u for u, v in traffic.variants.items() if v == "b"
    )
    assert all(traffic.variants[u] == "a" for u in m1_users if u)


def test_a_caller_stays_with_its_variant_in_another_gateway_process(
    setup: Setup, traffic: Traffic
) -> None:
    with setup.sdk(setup.second) as sdk:
        for i in range(0, USERS, 8):
            user = f"user-{i}"
            raw = sdk.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hello"}], user=user
            )
            assert raw.headers["x-enclave-variant"] == traffic.variants[user], user


def test_without_user_the_key_is_the_subject(setup: Setup) -> None:
    """No ``user``: one key's requests all land in one variant, in either process."""
    seen = set()
    for server in (setup.first, setup.second, setup.first):
        with setup.sdk(server, setup.other_key) as sdk:
            raw = sdk.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
            seen.add(raw.headers["x-enclave-variant"])
    assert len(seen) == 1


def test_streamed_answers_name_their_variant(setup: Setup, traffic: Traffic) -> None:
    user = next(u for u, v in traffic.variants.items() if v == "b")
    with (
        setup.sdk(setup.first) as sdk,
        sdk.chat.completions.with_streaming_response.create(
            model="chat",
            messages=[{"role": "user", "content": "ECHO streamed"}],
            user=user,
            stream=True,
        ) as response,
    ):
        assert response.headers["x-enclave-variant"] == "b"
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
    assert text == "streamed"
    assert setup.m2.last()["messages"][-1]["content"] == "ECHO streamed"


def test_other_models_carry_no_variant_and_models_lists_the_experiment(setup: Setup) -> None:
    with setup.sdk(setup.first) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="m1", messages=[{"role": "user", "content": "hello"}]
        )
        assert "x-enclave-variant" not in raw.headers
        assert {m.id for m in sdk.models.list()} == {"m1", "m2", "chat"}


def test_variant_in_metrics_log_line_and_audit_record(setup: Setup, traffic: Traffic) -> None:
    metrics = httpx.get(
        f"{setup.first.url}/metrics", headers={"authorization": f"Bearer {API_KEY}"}
    )
    b = sum(v == "b" for v in traffic.variants.values())
    line = 'enclave_gateway_experiment_requests_total{experiment="chat",status="200",variant="b"}'
    counted = [row for row in metrics.text.splitlines() if row.startswith(line)]
    assert counted and float(counted[0].split()[-1]) >= b
    user_id = traffic.request_ids["user-0"]
    assert setup.first.logged(
        lambda entry: (
            entry.get("trace.id") == user_id
            and (entry.get("enclave") or {}).get("variant") == traffic.variants["user-0"]
        )
    )
    records = [
        json.loads(line)
        for path in (setup.data / "audit").glob("*/*.jsonl")
        if not path.name.endswith(".keys.jsonl")
        for line in path.read_text().splitlines()
    ]
    mine = [r for r in records if r.get("trace_id") == user_id]
    assert len(mine) == 1
    assert mine[0]["decisions"]["experiment"] == "chat"
    assert mine[0]["decisions"]["variant"] == traffic.variants["user-0"]
    assert mine[0]["model"] == {"a": "m1", "b": "m2"}[traffic.variants["user-0"]]


def post_feedback(server: Server, key: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/feedback", headers={"authorization": f"Bearer {key}"}, json=body
    )


def test_feedback_only_from_the_same_tenant(setup: Setup, traffic: Traffic) -> None:
    """Another tenant's key gets the same 404 as an id nobody used (I6)."""
    request_id = traffic.request_ids["user-1"]
    theirs = post_feedback(setup.first, setup.other_key, {"request_id": request_id, "rating": 1})
    nobody = post_feedback(setup.first, setup.other_key, {"request_id": "no-such-id", "rating": 1})
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["error"]["code"] == nobody.json()["error"]["code"] == "request_not_found"
    assert theirs.json()["error"]["message"].replace(request_id, "X") == nobody.json()["error"][
        "message"
    ].replace("no-such-id", "X")


def test_bad_feedback_is_a_400(setup: Setup, traffic: Traffic) -> None:
    request_id = traffic.request_ids["user-2"]
    for body in (
        {"request_id": request_id, "rating": 2},
        {"request_id": request_id, "rating": "1"},
        {"request_id": request_id, "rating": True},
        {"request_id": request_id, "rating": 1, "extra": "x"},
        {"request_id": request_id, "rating": 1, "comment": "x" * 2001},
        {"request_id": "a b", "rating": 1},
        {"rating": 1},
        [1, 2],
    ):
        answer = post_feedback(setup.first, API_KEY, body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["type"] == "invalid_request_error"
    assert post_feedback(setup.first, "sk-wrong-" + "x" * 24, {}).status_code == 401


@pytest.fixture(scope="module")
def ratings(setup: Setup, traffic: Traffic) -> dict[str, Counter[str]]:
    """Every b caller rates up; the first ten a callers rate down, then change their
    mind to up (the second rating replaces the first); the next ten rate down.
    Ratings go to the second gateway: the request was answered by the first."""
    sent: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
    a_users = [u for u, v in traffic.variants.items() if v == "a"]
    b_users = [u for u, v in traffic.variants.items() if v == "b"]
    plan = [(u, 1) for u in b_users[:-1]] + [(u, -1) for u in a_users[:20]]
    plan += [(u, 1) for u in a_users[:10]]  # replaces the first ten's -1
    for user, rating in plan:
        body = {"request_id": traffic.request_ids[user], "rating": rating}
        assert post_feedback(setup.second, API_KEY, body).status_code == 200
    sent["b"]["up"] = len(b_users) - 1
    sent["a"]["up"], sent["a"]["down"] = 10, 10
    return sent


def last_of(traffic: Traffic, variant: str) -> str:
    """A caller of ``variant`` whom the ``ratings`` fixture leaves alone."""
    return [u for u, v in traffic.variants.items() if v == variant][-1]


def test_comment_is_stored_masked(setup: Setup, traffic: Traffic) -> None:
    comment = f"Wrong, call me on {PHONE} or write to {EMAIL}"
    request_id = traffic.request_ids[last_of(traffic, "a")]
    body = {"request_id": request_id, "rating": -1, "comment": comment}
    answer = post_feedback(setup.first, setup.other_key, body)
    assert answer.status_code == 404  # another tenant's request: nothing stored either
    answer = post_feedback(setup.first, API_KEY, body)
    assert answer.status_code == 200
    stored = answer.json()["comment"]
    assert PHONE not in stored and EMAIL not in stored and "<EMAIL" in stored
    raw = (setup.data / "feedback.sqlite3").read_bytes()
    assert PHONE.encode() not in raw and EMAIL.encode() not in raw
    # the same caller again: the -1 is replaced by this +1 (one more up for a)
    assert (
        post_feedback(setup.first, API_KEY, {"request_id": request_id, "rating": 1}).json()[
            "comment"
        ]
        is None
    )


def test_report_counts_what_was_sent(
    setup: Setup, traffic: Traffic, ratings: dict[str, Counter[str]]
) -> None:
    done = setup.enclave("experiments", "report", "chat", "--json", "--tenant", "default")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    variants = {v["variant"]: v for v in report["variants"]}
    assert list(variants) == ["a", "b"]  # the configured order: a is the control
    sent = Counter(traffic.variants.values())
    for name in ("a", "b"):
        v = variants[name]
        # the first gateway's 400, plus the second's stickiness checks (every 8th user),
        # plus the streamed answer (b) of the tenant "default"
        again = Counter(traffic.variants[f"user-{i}"] for i in range(0, USERS, 8))[name]
        assert v["requests"] == sent[name] + again + (name == "b")
        assert v["errors"] == 0 and v["error_rate"] == 0
        assert v["latency_ms_p50"] <= v["latency_ms_p95"]
        assert v["tokens_in"] == 5 * v["requests"]
        assert v["ratings_down"] == ratings[name]["down"]
    assert variants["b"]["ratings_up"] == ratings["b"]["up"]
    assert variants["a"]["ratings_up"] == ratings["a"]["up"] + 1  # test_comment_is_stored_masked
    low, high = variants["a"]["up_rate_95"]
    assert low < variants["a"]["up_rate"] < high
    (comparison,) = report["comparisons"]
    assert comparison["control"] == "a" and comparison["variant"] == "b"
    assert comparison["p_value"] < 0.05 and comparison["significant"] is True
    text = setup.enclave("experiments", "report", "chat")
    assert text.returncode == 0 and "significant at 0.05" in text.stdout


def test_export_keeps_liked_conversations_masked_and_once(setup: Setup, tmp_path: Path) -> None:
    """Captured content is the conversation as the caller saw it (raw values restored):
    the export masks it again; the raw phone number and e-mail never appear."""
    question = f"ECHO Call {PHONE} or mail {EMAIL} please"
    liked: list[str] = []
    with setup.sdk(setup.first) as sdk, setup.sdk(setup.second, setup.other_key) as other:
        for client, content in ((sdk, question), (sdk, question), (other, "ECHO other tenant")):
            raw = client.chat.completions.with_raw_response.create(
                model="chat",
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": content},
                ],
            )
            assert raw.parse().choices[0].message.content == content.removeprefix("ECHO ")
            liked.append(raw.headers["x-request-id"])
        disliked = sdk.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "ECHO not this one"}]
        ).headers["x-request-id"]
    for server, key, request_id, rating in (
        (setup.first, API_KEY, liked[0], 1),
        (setup.second, API_KEY, liked[1], 1),
        (setup.first, setup.other_key, liked[2], 1),
        (setup.first, API_KEY, disliked, -1),
    ):
        assert (
            post_feedback(server, key, {"request_id": request_id, "rating": rating}).status_code
            == 200
        )
    out = tmp_path / "train.jsonl"
    done = setup.enclave(
        "dataset", "export", "--min-rating", "1", "--tenant", "default", "--out", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    for value in (PHONE, EMAIL, "jane.roe"):
        assert value not in text
    lines = [json.loads(line) for line in text.splitlines()]
    mine = [line for line in lines if "Be brief." in json.dumps(line)]
    assert len(mine) == 1  # the same conversation twice, exported once
    (conversation,) = mine
    roles = [m["role"] for m in conversation["messages"]]
    assert roles == ["system", "user", "assistant"]
    user, answer = conversation["messages"][1]["content"], conversation["messages"][2]["content"]
    for placeholder in ("<PHONE_1>", "<EMAIL_1>"):  # one vault: the same placeholder in both
        assert placeholder in user and placeholder in answer
    assert "other tenant" not in text and "not this one" not in text
    # every line is a liked answer of tenant "default": b's, a's changed minds, user-3
    assert all(line["messages"][-1]["role"] == "assistant" for line in lines)
    everyone = tmp_path / "all.jsonl"
    done = setup.enclave("dataset", "export", "--out", str(everyone))
    assert done.returncode == 0 and "other tenant" in everyone.read_text()
    later = tmp_path / "later.jsonl"
    done = setup.enclave("dataset", "export", "--since", "2999-01-01", "--out", str(later))
    assert done.returncode == 0 and later.read_text() == ""
