"""A writer for the concurrency tests: ``python -m tests.functions.knowledge.ingest_worker``.

It ingests each folder given, in order, into one collection, as ``enclave ingest``
would (Settings from the environment, folder = root, so sources are stable across
rounds). Before each commit it waits at a file barrier: it writes
``BARRIER/ROUND-NAME`` and waits until ``--parties`` such files exist for that
round, so that every writer attempts the same round's commit at the same moment.
One line per round on stdout: ``ROUND VERSION``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from functions.knowledge import IngestProgress, KnowledgeBase
from functions.settings import Settings

BARRIER_TIMEOUT_S = 120


def barrier(folder: Path, round_: int, name: str, parties: int) -> None:
    (folder / f"{round_}-{name}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(folder.glob(f"{round_}-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"round {round_}: the other writers never arrived")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--barrier", type=Path, required=True)
    parser.add_argument("--parties", type=int, default=2)
    args = parser.parse_args()
    kb = KnowledgeBase(Settings().knowledge)
    for round_, folder in enumerate(args.folders):

        def wait(event: IngestProgress, round_: int = round_) -> None:
            if event.phase == "commit" and event.done == 0:
                barrier(args.barrier, round_, args.name, args.parties)

        summary = kb.ingest([folder], args.collection, progress=wait, root=folder)
        assert not summary.failed, summary.failed
        print(round_, summary.version, flush=True)


if __name__ == "__main__":
    main()
