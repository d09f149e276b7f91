"""Objects in an S3-compatible bucket, read and written with conditional requests.

The stores built on this (keys, audit chains, feedback) need three things of a
bucket, all in S3 since 2024 and in MinIO, Ceph and moto: a read that costs
nothing when the object is unchanged (``If-None-Match`` → 304), a write that
creates only (``If-None-Match: *``) and a write that replaces only the version
that was read (``If-Match: <ETag>``). A lost conditional write raises
:class:`WriteConflictError`: the caller reads again and retries, so concurrent
writers never lose each other's changes.

Calls are blocking (boto3); callers on the event loop run them in a thread.
Anything else that goes wrong becomes
:class:`~functions.errors.StorageUnavailableError` (a 503), never a 500.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from functions.errors import StorageUnavailableError
from functions.storage.settings import StorageSettings

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    etag: str


class Unchanged(enum.Enum):
    """What :meth:`ObjectStore.get` returns when the object still has the ETag given."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


class WriteConflictError(Exception):
    """A conditional write lost: the object exists (create) or changed (replace)."""


class ObjectStore(Protocol):
    """Keys are relative to the store's prefix; ``/`` separates their parts."""

    def get(self, key: str, *, etag: str | None = None) -> Blob | Unchanged | None:
        """The object, :data:`UNCHANGED` if it still has ``etag``, None if it is missing."""
        ...

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, create: bool = False
    ) -> str:
        """Write ``data``; returns the new ETag. Conditional on ``if_match`` or ``create``."""
        ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, in lexicographic order."""
        ...

    def scoped(self, name: str) -> ObjectStore:
        """The same bucket under ``<prefix>/<name>``."""
        ...


def _status(exc: Exception) -> int:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Objects:
    """An :class:`ObjectStore` on ``s3://bucket/prefix`` through one thread-safe boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Objects:
        import boto3  # only a gateway on a bucket pays for boto3
        from botocore.config import Config

        bucket, prefix = settings.location()
        config = Config(
            region_name=settings.s3_region,
            connect_timeout=min(settings.s3_timeout_s, 5.0),
            read_timeout=settings.s3_timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=32,
        )
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id=key_id.get_secret_value() if key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=config,
        )
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def scoped(self, name: str) -> S3Objects:
        return S3Objects(self._client, self.bucket, self._key(name.strip("/")))

    def get(self, key: str, *, etag: str | None = None) -> Blob | Unchanged | None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if etag is not None:
            args["IfNoneMatch"] = etag
        try:
            response = self._client.get_object(**args)
            return Blob(response["Body"].read(), response["ETag"])
        except Exception as exc:
            status = _status(exc)
            if status == 304:
                return UNCHANGED
            if status == 404 or _code(exc) in {"NoSuchKey", "404"}:
                return None
            raise self._unavailable("read", key, exc) from exc

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, create: bool = False
    ) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if create:
            args["IfNoneMatch"] = "*"
        elif if_match is not None:
            args["IfMatch"] = if_match
        try:
            return str(self._client.put_object(**args)["ETag"])
        except Exception as exc:
            # 412: the condition failed; 409: a concurrent conditional write to the same key
            if _status(exc) in {409, 412}:
                raise WriteConflictError(key) from exc
            if if_match is not None and _status(exc) == 404:
                raise WriteConflictError(key) from exc  # replaced object deleted meanwhile
            raise self._unavailable("write", key, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._unavailable("delete", key, exc) from exc

    def keys(self, prefix: str = "") -> list[str]:
        return list(self._iter_keys(prefix))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        base = self._key("")
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for item in page.get("Contents", ()):
                    yield str(item["Key"])[len(base) :]
        except Exception as exc:
            raise self._unavailable("list", prefix, exc) from exc

    def _unavailable(self, what: str, key: str, exc: Exception) -> StorageUnavailableError:
        """A 503 for the caller that names no bucket, prefix or key (the log has them)."""
        reason = _code(exc) or type(exc).__name__
        logger.warning(
            "operator storage failed",
            action=what,
            object=f"s3://{self.bucket}/{self._key(key)}",
            error=reason,
        )
        return StorageUnavailableError(f"Operator storage could not {what} ({reason[:64]}).")
