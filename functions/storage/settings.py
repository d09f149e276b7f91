"""Where durable state lives: ``ENCLAVE_STORAGE_URI`` and the S3 options that go with it.

Fields are flat, like the knowledge settings: ``ENCLAVE_STORAGE_S3_ENDPOINT`` sets
``s3_endpoint``. Unset credentials leave boto3 its standard chain (the
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` variables of a Modal secret, an
instance role…).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

S3 = "s3://"


class StorageSettings(BaseModel):
    # a local directory, or s3://BUCKET/PREFIX; None: the settings' data_dir
    uri: str | None = Field(default=None, min_length=1)
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = Field(default=False, description="allow a plain-http endpoint")
    s3_timeout_s: float = Field(default=10.0, gt=0, description="one request, at most")

    @field_validator("uri")
    @classmethod
    def _a_bucket_is_named(cls, uri: str | None) -> str | None:
        if uri is not None and uri.startswith(S3):
            bucket = uri[len(S3) :].split("/", 1)[0]
            if not bucket:
                raise ValueError("an s3:// storage URI names a bucket: s3://BUCKET/PREFIX")
        return uri

    @property
    def remote(self) -> bool:
        """Whether state lives in a bucket (nothing is written to the local disk)."""
        return self.uri is not None and self.uri.startswith(S3)

    def location(self) -> tuple[str, str]:
        """``(bucket, prefix)`` of an ``s3://`` URI; the prefix has no slashes at its ends."""
        if not self.remote or self.uri is None:
            raise ValueError(f"not an s3:// storage URI: {self.uri!r}")
        bucket, _, prefix = self.uri[len(S3) :].partition("/")
        return bucket, prefix.strip("/")

    def child(self, name: str) -> str:
        """The URI of ``name`` under the storage URI (the knowledge base's default)."""
        if self.uri is None:
            raise ValueError("the storage URI is not set")
        return f"{self.uri.rstrip('/')}/{name}"
