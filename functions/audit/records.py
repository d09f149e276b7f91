"""What one audit record holds, and the MAC that chains records together.

A record is one JSON line. The fields a caller gives (see :func:`build_request_record`
and :func:`build_admin_record`)::

    ts          "2025-01-31T12:00:00.123Z", UTC; when absent, the time of ``record()``
    trace_id    the request's trace id (x-request-id)
    kind        "request" | "admin"
    principal   key id or subject, never a key
    tenant, role
    model       the public model asked for        (request)
    deployment  the deployment that answered      (request)
    tokens_in, tokens_out, latency_ms, status
    decisions   {step: verdict} for every step (auth, route, later filters, retrieval…)
    action      what an administrator did          (admin)
    content     {"prompt": …, "answer": …}: never written as such. The writer drops it,
                or, with content capture on, replaces it by ``encrypted_content``.

and those the chain writer adds: ``chain`` (writer instance), ``seq`` (1, 2, … per
chain), ``prev`` (the previous record's ``mac``; :data:`GENESIS` for the first) and
``mac``: HMAC-SHA256, keyed by ``audit.hmac_key``, over the canonical JSON (sorted
keys, orjson) of every other field. orjson writes a parsed line back byte for byte
the same, so :func:`mac_of` recomputes exactly what the writer sealed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

GENESIS = "0" * 64  # ``prev`` of a chain's first record
CONTENT = "content"  # the event key holding raw text; never written in clear


def format_ts(seconds: float) -> str:
    """Unix seconds as an ISO 8601 UTC timestamp with milliseconds and a ``Z``."""
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def day_of(ts: object) -> str | None:
    """The UTC day ``YYYY-MM-DD`` of an ISO timestamp, or None when it is not one."""
    if isinstance(ts, str) and len(ts) >= 10 and ts[4] == "-" and ts[7] == "-":
        return ts[:10]
    return None


def canonical(fields: Mapping[str, Any]) -> bytes:
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def mac_of(key: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 (hex) of every field but ``mac``."""
    sealed = {k: v for k, v in fields.items() if k != "mac"}
    return hmac.new(key, canonical(sealed), hashlib.sha256).hexdigest()


def build_request_record(
    *,
    trace_id: str,
    principal: str | None,
    tenant: str | None,
    role: str | None,
    model: str | None,
    deployment: str | None,
    tokens_in: int | None,
    tokens_out: int | None,
    latency_ms: float,
    status: int | str,
    decisions: Mapping[str, str],
    ts: str | None = None,
    prompt: Any = None,
    answer: Any = None,
) -> dict[str, Any]:
    """One request's record. ``prompt``/``answer`` are kept only for content capture."""
    record: dict[str, Any] = {
        "ts": ts,
        "trace_id": trace_id,
        "kind": "request",
        "principal": principal,
        "tenant": tenant,
        "role": role,
        "model": model,
        "deployment": deployment,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "latency_ms": round(latency_ms, 3),
        "status": status,
        "decisions": dict(decisions),
    }
    return _with_content(record, prompt, answer)


def build_admin_record(
    *,
    trace_id: str,
    principal: str | None,
    tenant: str | None,
    role: str | None,
    action: str,
    status: int | str,
    target: str | None = None,
    decisions: Mapping[str, str] | None = None,
    ts: str | None = None,
) -> dict[str, Any]:
    """One administrator action (``action``, e.g. "audit.rotate-key", on ``target``)."""
    record: dict[str, Any] = {
        "ts": ts,
        "trace_id": trace_id,
        "kind": "admin",
        "principal": principal,
        "tenant": tenant,
        "role": role,
        "action": action,
        "target": target,
        "status": status,
        "decisions": dict(decisions or {}),
    }
    return _with_content(record, None, None)


def _with_content(record: dict[str, Any], prompt: Any, answer: Any) -> dict[str, Any]:
    if record["ts"] is None:
        del record["ts"]
    if prompt is not None or answer is not None:
        record[CONTENT] = {"prompt": prompt, "answer": answer}
    return record
