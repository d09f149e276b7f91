"""One collection on a bucket, many processes: concurrent writers, fresh readers, kill -9.

Everything runs against moto's S3 server on 127.0.0.1 through real processes:
writers are ``python -m …`` subprocesses with the storage settings a gateway or
``enclave ingest`` would get from its environment.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from functions.knowledge import CollectionRef, KnowledgeBase, KnowledgeSettings
from functions.knowledge.chunking import chunk_document
from functions.knowledge.parsers import parse
from functions.storage import StorageSettings
from tests.conftest import ROOT, child_env
from tests.functions.knowledge.conftest import Caller, bucket_settings
from tests.s3 import storage_env

REF = CollectionRef("default", "docs")
ROUNDS = 3
KILLED_BATCH = 24  # documents the killed ingest writes, one chunk each


def document(writer: str, index: int, edition: int) -> str:
    """A short Markdown document with phrases no other document has."""
    return (
        f"# {writer} handbook {index}\n\n"
        f"## Scope\nThis is edition {edition} of handbook {index} by writer {writer}. "
        f"It covers the {writer}{index} procedure for edition {edition}.\n\n"
        f"## Detail\nThe {writer}{index} procedure needs {index + edition} signatures "
        f"and a form named {writer.upper()}-{index}-{edition}.\n"
    )


def write_round(folder: Path, writer: str, round_: int) -> dict[str, bytes]:
    """Round ``r``: documents 0..r, each in edition r (so each round adds one, changes the rest)."""
    written = {}
    for index in range(round_ + 1):
        source = f"{writer}/doc{index}.md"
        data = document(writer, index, round_).encode()
        (folder / source).parent.mkdir(parents=True, exist_ok=True)
        (folder / source).write_bytes(data)
        written[source] = data
    return written


def check_consistent(kb: KnowledgeBase, editions: Mapping[str, list[bytes]]) -> dict[str, bytes]:
    """Every document present is one complete edition: all its chunks, no others, no duplicates.

    ``editions`` maps each source to the contents it may hold; returns what each holds.
    """
    settings = kb.settings
    table = kb.store.require(REF)
    rows = table.search().select(["id", "source", "position", "text", "content_hash"])
    rows_list = rows.limit(None).to_list()
    assert len({r["id"] for r in rows_list}) == len(rows_list), "duplicate chunk ids"
    by_hash = {hashlib.sha256(d).hexdigest(): d for ds in editions.values() for d in ds}
    held: dict[str, bytes] = {}
    for source in {r["source"] for r in rows_list}:
        mine = [r for r in rows_list if r["source"] == source]
        hashes = {r["content_hash"] for r in mine}
        assert len(hashes) == 1, f"{source} mixes editions"
        data = by_hash[hashes.pop()]
        assert data in editions[source]
        chunks = chunk_document(parse(source, data), settings.chunk_size, settings.chunk_overlap)
        stored = sorted((r["position"], r["text"]) for r in mine)
        assert stored == [(c.position, c.text) for c in chunks], f"{source} is incomplete"
        held[source] = data
    return held


def test_two_processes_ingesting_one_collection_at_once_both_land(
    s3_storage: StorageSettings, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    editions: dict[str, list[bytes]] = {}
    folders: dict[str, list[Path]] = {"a": [], "b": []}
    for writer, rounds in folders.items():
        for round_ in range(ROUNDS):
            folder = tmp_path / f"{writer}-r{round_}"
            for source, data in write_round(folder, writer, round_).items():
                editions.setdefault(source, []).append(data)
            rounds.append(folder)
    # one process each: the race is between the two commits, not within an ingest
    env = child_env(**storage_env(s3_storage), ENCLAVE_KNOWLEDGE_INGEST_WORKERS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.functions.knowledge.ingest_worker"]
            + [str(f) for f in rounds]
            + ["--collection", "docs", "--name", writer, "--barrier", str(barrier)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer, rounds in folders.items()
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    errors = "\n".join(err[-2500:] for _, err in outputs)
    assert [p.returncode for p in procs] == [0, 0], errors
    # each round both writers committed, at the same moment (the barrier), and got
    # different versions: neither commit overwrote the other's manifest
    versions = [dict(line.split() for line in out.splitlines()) for out, _ in outputs]
    for name in map(str, range(ROUNDS)):
        assert versions[0][name] != versions[1][name]

    kb = KnowledgeBase(bucket_settings(s3_storage))
    last = {s: e[-1] for s, e in editions.items()}
    assert check_consistent(kb, editions) == last  # every document, in its last edition
    assert sorted(d.source for d in kb.list_documents("docs")) == sorted(last)
    for writer in folders:
        [top] = kb.retrieve(f"the {writer}2 procedure", ["docs"], Caller(), top_k=1)
        assert top.source == f"{writer}/doc2.md"


@pytest.mark.parametrize("refresh_s", [0.0, 3600.0])
def test_a_commit_is_retrievable_at_once_through_another_instance(
    s3_storage: StorageSettings,
    make_kb: Callable[..., KnowledgeBase],
    tmp_path: Path,
    refresh_s: float,
) -> None:
    writer = make_kb(base=bucket_settings(s3_storage))
    reader = make_kb(base=bucket_settings(s3_storage, refresh_s=refresh_s))  # another gateway
    first = tmp_path / "first"
    write_round(first, "a", 0)
    writer.ingest([first], "docs", root=first)
    [top] = reader.retrieve("the a0 procedure", ["docs"], Caller(), top_k=1)
    assert top.source == "a/doc0.md"  # the reader has the table open now

    second = tmp_path / "second"
    write_round(second, "b", 0)
    writer.ingest([second], "docs", root=second)
    [top] = reader.retrieve("the b0 procedure", ["docs"], Caller(), top_k=1)
    # the default (0) checks for a newer version on every read; a reader told to
    # trust its view for an hour still answers from the version it opened
    assert (top.source == "b/doc0.md") is (refresh_s == 0)


def _read_until(stream: subprocess.Popen[bytes], marker: bytes, seen: threading.Event) -> None:
    buffer = b""
    assert stream.stderr is not None
    while chunk := stream.stderr.read(1):
        buffer = (buffer + chunk)[-64:]
        if marker in buffer:
            seen.set()


@pytest.mark.parametrize("delay_s", [0.0, 0.2, 0.6])
def test_kill_9_during_an_ingest_leaves_the_collection_consistent(
    s3_storage: StorageSettings,
    make_kb: Callable[..., KnowledgeBase],
    tmp_path: Path,
    delay_s: float,
) -> None:
    kb = make_kb(base=bucket_settings(s3_storage))
    folder = tmp_path / "docs"
    editions: dict[str, list[bytes]] = {}
    for source, data in write_round(folder, "k", KILLED_BATCH - 1).items():
        editions[source] = [data]
    kb.ingest([folder], "docs", root=folder)
    for source, data in write_round(folder, "k", KILLED_BATCH).items():  # one more, all changed
        editions.setdefault(source, []).append(data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "ingest", str(folder), "--collection", "docs"],
        cwd=folder,
        env=child_env(**storage_env(s3_storage)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    committing = threading.Event()
    reader = threading.Thread(target=_read_until, args=(proc, b"commit", committing))
    reader.start()
    assert committing.wait(timeout=600), "the ingest never reached its commit"
    time.sleep(delay_s)  # into the commit's writes, or the index upkeep after it
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()

    held = check_consistent(kb, editions)  # readable, and each document whole
    assert set(held) >= {f"k/doc{i}.md" for i in range(KILLED_BATCH)}
    [top] = kb.retrieve("the k3 procedure", ["docs"], Caller(), top_k=1)
    assert top.source == "k/doc3.md"
    again = kb.ingest([folder], "docs", root=folder)  # a re-ingest completes the job
    assert not again.failed
    assert check_consistent(kb, editions) == {s: e[-1] for s, e in editions.items()}


def test_bucket_settings_ask_for_conditional_puts(s3_storage: StorageSettings) -> None:
    options = bucket_settings(s3_storage).storage_options()
    assert options["conditional_put"] == "etag"
    assert KnowledgeSettings(uri="/vol/kb").storage_options() == {}
