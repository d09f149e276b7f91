"""``enclave cache warm|stats|clear``: the response cache of a running gateway.

All three talk to the gateway over HTTP, so they work alike for the memory store
(one process) and Redis (every gateway sharing it), and ``warm`` fills the cache
through the normal pipeline: authenticated, masked, routed and audited like any
chat. The key decides the tenant whose cache is warmed; ``--url`` and ``--key``
default to the local stack (``ENCLAVE_API_KEY``, else ``<data_dir>/api_key``).

The answer bank for ``warm`` is JSON lines, one question per line: either a
whole chat request (``{"model": …, "messages": […], "temperature": 0}``) or
``{"question": "…", "model": "…", "system": "…"}``. Warm with the parameters your
frontend sends: an entry is shared only by requests that match it exactly (as
masked). A request without ``temperature`` or ``seed`` is sent with
``temperature`` 0, which the default cache policy keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from functions.settings import DEFAULT_MODEL, Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = commands.add_parser("cache", help="the response cache of a running gateway")
    actions = cache.add_subparsers(dest="cache_command", required=True)
    warm = actions.add_parser("warm", help="pre-generate answers to frequent questions")
    warm.add_argument("file", type=Path, help="JSON lines: chat requests or {question, model}")
    warm.add_argument("--model", default=None, help=f"default model (else {DEFAULT_MODEL})")
    stats = actions.add_parser("stats", help="entries and hit/miss/bypass counts")
    clear = actions.add_parser("clear", help="drop entries")
    for parser in (stats, clear):
        parser.add_argument("--tenant", default=None, help="one tenant (default: the key's)")
    for parser in (warm, stats, clear):
        parser.add_argument("--url", default=None, help="the gateway (default: the local one)")
        parser.add_argument("--key", default=None, help="an API key (default: the local one)")


def _key(args: argparse.Namespace, settings: Settings) -> str:
    if args.key:
        return str(args.key)
    if os.environ.get("ENCLAVE_API_KEY"):
        return os.environ["ENCLAVE_API_KEY"]
    if settings.gateway.api_keys:
        return settings.gateway.api_keys[0].get_secret_value()
    kept = settings.data_dir / "api_key"
    if kept.exists():
        return kept.read_text().strip()
    raise SystemExit("enclave: no API key: pass --key, or set ENCLAVE_API_KEY")


def _request(line: dict[str, Any], model: str) -> dict[str, Any]:
    if "messages" in line:
        request = dict(line)
    else:
        messages = [{"role": "user", "content": str(line["question"])}]
        if line.get("system"):
            messages.insert(0, {"role": "system", "content": str(line["system"])})
        request = {"messages": messages}
    request.setdefault("model", line.get("model") or model)
    if request.get("temperature") is None and request.get("seed") is None:
        request["temperature"] = 0
    request.pop("stream", None)
    return request


def warm(client: httpx.Client, path: Path, model: str) -> int:
    """Ask every question, refreshing its entry; a line per question, a summary at the end."""
    counts = {"kept": 0, "not kept": 0, "failed": 0}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            request = _request(json.loads(text), model)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            print(f"line {number}: not a chat request or {{question}}", file=sys.stderr)
            counts["failed"] += 1
            continue
        # no-cache: generate afresh and keep the answer, even over an older entry
        answer = client.post(
            "/v1/chat/completions", json=request, headers={"cache-control": "no-cache"}
        )
        if answer.status_code != 200:
            message = answer.json().get("error", {}).get("message", answer.text[:200])
            print(f"line {number}: {answer.status_code} {message}", file=sys.stderr)
            counts["failed"] += 1
            continue
        result = answer.headers.get("x-enclave-cache", "")
        kept = result == "bypass" and _kept(client, request)
        counts["kept" if kept else "not kept"] += 1
        print(f"line {number}: {'kept' if kept else 'not kept (policy)'}")
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    return 1 if counts["failed"] else 0


def _kept(client: httpx.Client, request: dict[str, Any]) -> bool:
    """Whether the answer is now in the cache: the same request again is a hit."""
    again = client.post("/v1/chat/completions", json=request)
    return again.status_code == 200 and again.headers.get("x-enclave-cache") == "hit"


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = args.url or f"http://{settings.gateway.host}:{settings.gateway.port}"
    headers = {"authorization": f"Bearer {_key(args, settings)}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        try:
            if args.cache_command == "warm":
                return warm(client, args.file, args.model or DEFAULT_MODEL)
            params = {"tenant": args.tenant} if args.tenant else {}
            method = "GET" if args.cache_command == "stats" else "DELETE"
            answer = client.request(method, "/v1/admin/cache", params=params)
        except httpx.TransportError as exc:
            raise SystemExit(f"enclave: the gateway at {url} is not reachable: {exc}") from exc
    if answer.status_code != 200:
        message = answer.json().get("error", {}).get("message", answer.text[:200])
        raise SystemExit(f"enclave: {answer.status_code} {message}")
    print(json.dumps(answer.json(), indent=2))
    return 0
