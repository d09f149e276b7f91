"""A real redis-server for the shared-cache tests (the recording upstream comes from
tests/functions/conftest.py)."""

from tests.functions.ratelimit.conftest import redis_url  # noqa: F401
