"""Logs as JSON lines in the Elastic Common Schema, each carrying its request's trace id.

The trace id lives in a context variable that the edge middleware sets from a
W3C ``traceparent`` or the ``x-request-id`` header (or a fresh one), so every
line written while serving a request, by any step, carries it without being
passed around.

One line per record, ECS field names where ECS has one (ecs-logging's layout:
``@timestamp``, ``log.level`` and ``message`` first)::

    {"@timestamp": "2025-01-31T12:00:00.123456Z", "log.level": "info", "message": "request",
     "ecs.version": "8.11.0", "service.name": "enclave-gateway", "event.dataset": "enclave.gateway",
     "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "http.request.method": "POST",
     "url.path": "/v1/chat/completions", "http.response.status_code": 200,
     "event.duration": 12340000}

Keyword arguments a caller passes (``logger.info("chat", model=…, ms=…)``) are
mapped to their ECS field in :data:`ECS_FIELDS`; the rest go under ``enclave``,
our own namespace (``"enclave": {"model": …, "decisions": {…}}``), so they can
never collide with an ECS field. ``ms`` becomes ``event.duration`` in
nanoseconds, as ECS wants it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

ECS_VERSION = "8.11.0"

trace_id: ContextVar[str] = ContextVar("trace_id", default="-")
# the W3C trace context of this service's span for the request: echoed on the
# response and sent upstream; None when the trace id is not a W3C one
traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)

# version "00" is exactly 55 characters; a later version may append "-…" (W3C Trace Context §3.2)
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?",
    re.DOTALL,
)
_W3C_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """The trace id and flags of a valid ``traceparent`` header, or None (never trusted)."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None or match["version"] == "ff":
        return None
    if match["version"] == "00" and match["rest"] is not None:
        return None
    if match["trace"] == "0" * 32 or match["parent"] == "0" * 16:
        return None
    return match["trace"], match["flags"]


def child_traceparent(trace: str, flags: str = "01") -> str | None:
    """A ``traceparent`` for a new span of ``trace`` (None if it is not a W3C trace id)."""
    if not _W3C_TRACE_ID.fullmatch(trace) or trace == "0" * 32:
        return None
    return f"00-{trace}-{secrets.token_hex(8)}-{flags}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _status_code(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _nanoseconds(ms: Any) -> Any:
    return round(ms * 1_000_000) if isinstance(ms, int | float) else ms


# keyword arguments our code logs with → (ECS field, conversion)
ECS_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "method": ("http.request.method", str),
    "path": ("url.path", str),
    "status": ("http.response.status_code", _status_code),
    "ms": ("event.duration", _nanoseconds),
    "error": ("error.message", str),
    "logger_name": ("log.logger", str),
}


def ecs_line(record: Record, service: str) -> dict[str, Any]:
    """One loguru record as an ECS document (flat dotted keys; ``enclave`` for our own)."""
    extra = dict(record["extra"])
    line: dict[str, Any] = {
        "@timestamp": _utc(record["time"]),
        "log.level": record["level"].name.lower(),
        "message": record["message"],
        "ecs.version": ECS_VERSION,
        "service.name": f"enclave-{service}",
        "event.dataset": f"enclave.{service}",
    }
    trace = extra.pop("trace_id", None) or trace_id.get()
    if trace != "-":  # "-": outside any request (start-up, background tasks)
        line["trace.id"] = trace
    ours: dict[str, Any] = {}
    for key, value in extra.items():
        if key in ECS_FIELDS:
            field, convert = ECS_FIELDS[key]
            line[field] = convert(value)
        else:
            ours[key] = value
    if ours:
        line["enclave"] = ours
    if record["exception"] is not None:
        kind, value, tb = record["exception"]
        line["error.type"] = kind.__name__ if kind is not None else None
        line["error.message"] = str(value)
        line["error.stack_trace"] = "".join(traceback.format_exception(kind, value, tb))
    return line


def _json_sink(stream: TextIO, service: str) -> Callable[[Message], None]:
    pid = os.getpid()  # which of several gateway workers wrote the line (ECS process.pid)

    def write(message: Message) -> None:
        document = ecs_line(message.record, service)
        document["process.pid"] = pid
        line = orjson.dumps(document, default=str)
        stream.write(line.decode() + "\n")
        stream.flush()

    return write


class _ToLoguru(logging.Handler):
    """Standard-library records (uvicorn, litellm, httpx) into the same JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(
            level, record.getMessage(), logger_name=record.name
        )


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every record, loguru's and the standard library's, to ``stream`` as JSON lines."""
    logger.remove()
    logger.add(_json_sink(stream or sys.stderr, service), level=level, format="{message}")
    logging.basicConfig(handlers=[_ToLoguru()], level=level, force=True)
    for name in ("uvicorn", "uvicorn.error"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # one line per request is ours to write: httpx's and botocore's per-call INFO lines
    # (which name upstream and bucket URLs) stay out, as litellm's import used to see to
    for name in ("httpx", "httpcore", "botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
