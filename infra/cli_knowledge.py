"""``enclave ingest`` and ``enclave docs list|delete``: the knowledge base from the command line.

``enclave ingest`` embeds over a pool of processes (``ENCLAVE_KNOWLEDGE_INGEST_WORKERS``,
one per core by default); ``--remote`` embeds on Modal instead (:mod:`infra.ingest_remote`).
Either way the collection is written once, from here.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import TYPE_CHECKING

from functions import knowledge
from functions.settings import Settings

if TYPE_CHECKING:  # LanceDB: imported by the commands that use it, not by every CLI start
    from functions.knowledge.fanout import DocumentMapper
    from functions.knowledge.ingest import IngestProgress, IngestSummary


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser("ingest", help="ingest files and folders into a collection")
    ingest.add_argument("paths", nargs="+")
    ingest.add_argument("--collection", required=True)
    ingest.add_argument("--tenant", default="default")
    ingest.add_argument(
        "--remote",
        action="store_true",
        help="embed on Modal (the deployed app's DocumentEmbedder); commit from here",
    )
    docs = commands.add_parser("docs", help="list or delete a collection's documents")
    actions = docs.add_subparsers(dest="docs_command", required=True)
    listing = actions.add_parser("list")
    delete = actions.add_parser("delete")
    delete.add_argument("source", help="the document's source, as 'docs list' shows it")
    for parser in (listing, delete):
        parser.add_argument("--collection", required=True)
        parser.add_argument("--tenant", default="default")


def _progress(event: IngestProgress) -> None:
    width = 30
    filled = width * event.done // max(event.total, 1)
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(
        f"\r{event.phase:<6} [{bar}] {event.done}/{event.total} {event.source[-40:]:<40}"
    )
    if event.done >= event.total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def summary_lines(summary: IngestSummary) -> list[str]:
    lines = [
        f"collection {summary.collection}: {summary.files} files, {summary.chunks} chunks "
        f"({summary.added} added, {summary.replaced} replaced, {summary.unchanged} unchanged) "
        f"in {summary.seconds:.1f} s, {summary.chunks_per_s:.1f} chunks/s",
    ]
    lines += [f"skipped {source}" for source in summary.skipped]
    lines += [f"failed  {failure.source}: {failure.reason}" for failure in summary.failed]
    return lines


def _remote_mapper() -> DocumentMapper:
    if importlib.util.find_spec("modal") is None:
        raise SystemExit("enclave: --remote needs the modal extra: pip install -e '.[modal]'")
    from infra.ingest_remote import deployed_mapper  # imports modal

    return deployed_mapper()


def run(args: argparse.Namespace, settings: Settings) -> int:
    kb = knowledge.KnowledgeBase(settings.knowledge)
    if args.command == "ingest":
        mapper = _remote_mapper() if args.remote else None
        summary = kb.ingest(
            args.paths, args.collection, tenant=args.tenant, progress=_progress, mapper=mapper
        )
        print("\n".join(summary_lines(summary)))
        return 1 if summary.failed else 0
    if args.docs_command == "list":
        for doc in kb.list_documents(args.collection, args.tenant):
            print(f"{doc.source}\t{doc.chunks} chunks\t{doc.title}")
        return 0
    deleted = kb.delete_document(args.collection, args.source, args.tenant)
    print(f"deleted {deleted} chunks of {args.source}")
    return 0 if deleted else 1
