"""Fixtures: moto's S3 server and a real redis-server, for the bucket backend."""

from tests.functions.ratelimit.conftest import redis_url
from tests.s3 import s3_server, s3_storage

__all__ = ["redis_url", "s3_server", "s3_storage"]
