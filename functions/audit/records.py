"""What one audit record holds, and the MAC that chains records together.

A record is one JSON line. The fields a caller gives (see :func:`build_request_record`
and :func:`build_admin_record`)::

    ts          "2025-01-31T12:00:00.123Z", UTC; when absent, the time of ``record()``
    trace_id    the request's trace id (x-request-id)
    kind        "request" | "admin" | "refusals"
    principal   key id or subject, never a key
    tenant, role
    end_user    {"id", "pseudonym", "source", "email"?, "role"?}: the end user a
                frontend key named (functions/endusers.py)  (request; optional)
    route       the route, when not the chat route  (request; optional)
    model       the public model asked for        (request)
    deployment  the deployment that answered      (request)
    tokens_in, tokens_out, latency_ms, status
    error       what the refusal said, bounded     (request; optional)
    decisions   {step: verdict} for every step (auth, route, later filters, retrieval…)
    action      what an administrator did          (admin)
    counts      {"<route> <status>": n}: unauthenticated refusals beyond the writer's
                budget for them, summed instead of written one by one  (refusals)
    content     {"prompt": …, "answer": …}: never written as such. The writer drops it,
                or, with content capture on, replaces it by ``encrypted_content``.

and those the chain writer adds: ``chain`` (writer instance), ``seq`` (1, 2, … per
chain), ``prev`` (the previous record's ``mac``; :data:`GENESIS` for the first) and
``mac``: HMAC-SHA256, keyed by ``audit.hmac_key``, over the canonical JSON (sorted
keys, orjson) of every other field. orjson writes a parsed line back byte for byte
the same, so :func:`mac_of` recomputes exactly what the writer sealed.

Every text a caller can choose (model, key id, user, route, error message,
decisions) is bounded by the builders: past :data:`MAX_FIELD_CHARS` (or
:data:`MAX_ERROR_CHARS` for ``error``) it is cut and ends with a marker saying how
much was cut, so a 1 MB model name costs the log a few hundred bytes.
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
MAX_FIELD_CHARS = 256  # ids, names, routes, decisions (keys and verdicts)
MAX_ERROR_CHARS = 1024  # an error message
MAX_DECISIONS = 64  # steps recorded per request; the rest are counted under "…"


def bounded(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    """``value`` with a string cut to ``limit`` characters plus a marker; others as they are."""
    if not isinstance(value, str) or len(value) <= limit:
        return value
    return f"{value[:limit]}…[truncated {len(value) - limit} chars]"


def bounded_decisions(decisions: Mapping[str, Any]) -> dict[str, Any]:
    """At most :data:`MAX_DECISIONS` entries, each key and verdict bounded."""
    kept = {
        bounded(str(step)): bounded(verdict)
        for step, verdict in list(decisions.items())[:MAX_DECISIONS]
    }
    if len(decisions) > MAX_DECISIONS:
        kept["…"] = f"{len(decisions) - MAX_DECISIONS} more"
    return kept


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
    route: str | None = None,
    error: str | None = None,
    end_user: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One request's record. ``prompt``/``answer`` are kept only for content capture.

    ``route``, ``error`` and ``end_user`` are written only when given; every text is
    bounded.
    """
    record: dict[str, Any] = {
        "ts": ts,
        "trace_id": bounded(trace_id),
        "kind": "request",
        "principal": bounded(principal),
        "tenant": bounded(tenant),
        "role": bounded(role),
        "model": bounded(model),
        "deployment": bounded(deployment),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "latency_ms": round(latency_ms, 3),
        "status": bounded(status),
        "decisions": bounded_decisions(decisions),
    }
    if route is not None:
        record["route"] = bounded(route)
    if error is not None:
        record["error"] = bounded(error, MAX_ERROR_CHARS)
    if end_user is not None:
        record["end_user"] = {bounded(k): bounded(v) for k, v in list(end_user.items())[:8]}
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
        "trace_id": bounded(trace_id),
        "kind": "admin",
        "principal": bounded(principal),
        "tenant": bounded(tenant),
        "role": bounded(role),
        "action": bounded(action),
        "target": bounded(target),
        "status": bounded(status),
        "decisions": bounded_decisions(decisions or {}),
    }
    return _with_content(record, None, None)


def build_refusals_record(counts: Mapping[str, int], first: float, last: float) -> dict[str, Any]:
    """Unauthenticated refusals summed: ``{"<route> <status>": n}`` between two times."""
    return {
        "ts": last,
        "kind": "refusals",
        "principal": None,
        "counts": {bounded(k): n for k, n in counts.items()},
        "total": sum(counts.values()),
        "first": format_ts(first),
    }


def _with_content(record: dict[str, Any], prompt: Any, answer: Any) -> dict[str, Any]:
    if record["ts"] is None:
        del record["ts"]
    if prompt is not None or answer is not None:
        record[CONTENT] = {"prompt": prompt, "answer": answer}
    return record
