"""Logs as JSON lines, each carrying the trace id of the request it belongs to.

The trace id lives in a context variable that the edge middleware sets from the
``x-request-id`` header (or a fresh one), so every line written while serving a
request, by any step, carries it without being passed around.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message

trace_id: ContextVar[str] = ContextVar("trace_id", default="-")


def _json_sink(stream: TextIO, service: str) -> Any:
    def write(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "ts": record["time"].isoformat(timespec="milliseconds"),
            "level": record["level"].name,
            "service": service,
            "trace_id": record["extra"].pop("trace_id", None) or trace_id.get(),
            "msg": record["message"],
        }
        line.update(record["extra"])
        if record["exception"] is not None:
            line["exception"] = repr(record["exception"].value)
        stream.write(orjson.dumps(line, default=str).decode() + "\n")
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
