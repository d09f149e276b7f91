"""Log lines in the Elastic Common Schema: known keywords mapped, the rest under ``enclave``."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from functions.logs import configure_logging, trace_id


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("gateway", "DEBUG", stream)
    yield stream
    logger.remove()
    logging.basicConfig(handlers=[], force=True)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_line_uses_ecs_names(lines: io.StringIO) -> None:
    token = trace_id.set("4bf92f3577b34da6a3ce929d0e0e4736")
    try:
        logger.info("request", method="POST", path="/v1/chat/completions", status=200, ms=12.34)
    finally:
        trace_id.reset(token)
    [line] = parsed(lines)
    assert list(line)[:3] == ["@timestamp", "log.level", "message"]  # ecs-logging's order
    assert line["@timestamp"].endswith("Z") and line["@timestamp"][:2] == "20"
    assert line["log.level"] == "info" and line["message"] == "request"
    assert line["ecs.version"] and line["service.name"] == "enclave-gateway"
    assert line["event.dataset"] == "enclave.gateway"
    assert line["process.pid"] == os.getpid()  # which gateway worker wrote it
    assert line["trace.id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["http.request.method"] == "POST"
    assert line["url.path"] == "/v1/chat/completions"
    assert line["http.response.status_code"] == 200
    assert line["event.duration"] == 12_340_000  # nanoseconds, as ECS wants
    assert "enclave" not in line


def test_our_own_keywords_go_under_enclave_and_statuses_become_numbers(
    lines: io.StringIO,
) -> None:
    logger.info("chat", model="m", deployment="d", status="429", decisions={"auth": "key"})
    [line] = parsed(lines)
    assert line["enclave"] == {"model": "m", "deployment": "d", "decisions": {"auth": "key"}}
    assert line["http.response.status_code"] == 429
    assert "trace.id" not in line  # outside a request there is none to name


def test_an_exception_becomes_ecs_error_fields(lines: io.StringIO) -> None:
    try:
        raise ValueError("bad value")
    except ValueError as exc:
        logger.opt(exception=exc).error("unhandled error")
    [line] = parsed(lines)
    assert line["log.level"] == "error"
    assert line["error.type"] == "ValueError" and line["error.message"] == "bad value"
    assert "Traceback" in line["error.stack_trace"] and "bad value" in line["error.stack_trace"]


def test_standard_library_records_name_their_logger(lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").warning("port in use")
    [line] = parsed(lines)
    assert line["log.level"] == "warning" and line["message"] == "port in use"
    assert line["log.logger"] == "uvicorn.error"
