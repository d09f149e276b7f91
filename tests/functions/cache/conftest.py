"""The fixtures the cache tests share with other suites: a real redis-server and a
recording upstream (a test double for a model server)."""

from tests.functions.ratelimit.conftest import redis_url  # noqa: F401
from tests.security.conftest import rec_upstream  # noqa: F401
