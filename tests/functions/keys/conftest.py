import secrets
from datetime import UTC, datetime

from functions.keys import KeyRecord
from tests.s3 import s3_server, s3_storage

__all__ = ["many_keys", "s3_server", "s3_storage"]


def many_keys(count: int) -> list[KeyRecord]:
    """``count`` member keys over 50 tenants, as a busy store holds them."""
    now = datetime.now(UTC)
    return [
        KeyRecord(
            id=f"key_{i:012x}",
            tenant=f"t{i % 50}",
            role="member",
            created_at=now,
            display="sk-enc-abcd",
            digest=secrets.token_hex(32),
        )
        for i in range(count)
    ]
