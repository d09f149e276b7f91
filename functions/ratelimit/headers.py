"""The rate-limit headers, spelled and formatted as OpenAI sends them.

    x-ratelimit-limit-requests      60        the RPM limit that binds
    x-ratelimit-remaining-requests  59
    x-ratelimit-reset-requests      1s        until the bucket is full again
    x-ratelimit-limit-tokens        150000
    x-ratelimit-remaining-tokens    149984
    x-ratelimit-reset-tokens        6m0s
    retry-after                     2         on 429 only: whole seconds, at least 1
    retry-after-ms                  1200      on 429 only (the openai clients prefer it)

Durations are written like Go's ``time.Duration``, as OpenAI's are: ``20ms``,
``1.2s``, ``6m0s``, ``1h0m0s``, rounded up to the millisecond so that a client
waiting that long finds its tokens.
"""

from __future__ import annotations

import math

# Within a microsecond of a whole unit rounds down: the limiter's buckets grant a
# microsecond of slack (functions.ratelimit.store.SLACK_S), so the wait still suffices.
_SLACK_MS = 1e-3


def format_duration(seconds: float) -> str:
    """``seconds`` as OpenAI writes a reset: ``0s``, ``120ms``, ``8.64s``, ``6m0s``, ``1h2m3s``."""
    ms = math.ceil(seconds * 1000 - _SLACK_MS) if seconds > 0 else 0
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    whole, frac = divmod(ms, 1000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return out + (f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)) + "s"


def limit_headers(kind: str, limit: int, remaining: float, reset_s: float) -> dict[str, str]:
    """The three ``x-ratelimit-*-{kind}`` headers; ``kind`` is ``requests`` or ``tokens``."""
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, math.floor(remaining))),
        f"x-ratelimit-reset-{kind}": format_duration(reset_s),
    }


def retry_headers(retry_after_s: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, at least 1) and ``retry-after-ms``."""
    return {
        "retry-after": str(max(1, math.ceil(retry_after_s - _SLACK_MS / 1000))),
        "retry-after-ms": str(max(1, math.ceil(retry_after_s * 1000 - _SLACK_MS))),
    }
