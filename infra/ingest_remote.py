"""Ingestion embedded on Modal: ``enclave ingest --remote`` and ``modal run …::ingest``.

The documents are read, hashed and committed here, by the same
:class:`~functions.knowledge.ingest.Ingestor` as a local ingest; only the parsing,
chunking and embedding of the changed documents goes to Modal, as ``.map()`` over
the ``DocumentEmbedder`` class of ``infra/modal_app.py`` (one container loads the
embedder once, in ``@modal.enter``, and takes document after document). The
collection is written once, at the end, to the storage URI (the bucket) these
settings name, exactly as a local ingest writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from functions.knowledge.fanout import DocumentTask, EmbeddedDocument


class ModalMapper:
    """A :class:`~functions.knowledge.fanout.DocumentMapper` over a Modal class's containers.

    ``embedder_cls`` is ``DocumentEmbedder`` — of this run's app (``modal run``) or
    of the deployed one (``modal.Cls.from_name(APP_NAME, "DocumentEmbedder")``).
    """

    def __init__(self, embedder_cls: Any) -> None:
        self._cls = embedder_cls

    def map(self, tasks: Sequence[DocumentTask]) -> Iterator[EmbeddedDocument]:
        if not tasks:
            return
        # order_outputs: results pair with tasks, as the local pool's do
        yield from self._cls().embed.map(list(tasks), order_outputs=True)


def deployed_mapper() -> ModalMapper:
    """The deployed app's ``DocumentEmbedder`` (``modal deploy -m infra.modal_app``)."""
    import modal  # the modal extra: only for --remote

    from infra.modal_app import APP_NAME, EMBEDDER_CLASS

    return ModalMapper(modal.Cls.from_name(APP_NAME, EMBEDDER_CLASS))
