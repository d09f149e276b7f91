"""Header values formatted as OpenAI formats them."""

from __future__ import annotations

import math

import pytest

from functions.ratelimit.headers import format_duration, limit_headers, retry_headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.0004, "1ms"),
        (0.12, "120ms"),
        (0.999, "999ms"),
        (1, "1s"),
        (1.2, "1.2s"),
        (8.64, "8.64s"),
        (20.000000000000004, "20s"),  # float noise below a microsecond rounds down
        (59.9991, "1m0s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
        (86_400, "24h0m0s"),
    ],
)
def test_format_duration_like_go_and_openai(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_limit_headers_floor_the_remaining_count() -> None:
    assert limit_headers("tokens", 1000, 12.9, 0.5) == {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "12",
        "x-ratelimit-reset-tokens": "500ms",
    }
    assert limit_headers("requests", 5, -3.0, 1)["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize(
    ("seconds", "after", "after_ms"),
    [(0.0001, "1", "1"), (0.2, "1", "200"), (1.0, "1", "1000"), (1.001, "2", "1001")],
)
def test_retry_after_is_whole_seconds_at_least_one(
    seconds: float, after: str, after_ms: str
) -> None:
    assert retry_headers(seconds) == {"retry-after": after, "retry-after-ms": after_ms}
    assert int(after) >= math.ceil(seconds - 1e-6)
