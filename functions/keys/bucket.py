"""Keys in a bucket: one index object, replaced only over the version that was read.

``<prefix>/keys/index.json`` holds every record (the same JSON list as a local
``keys.json``). A writer reads it, applies its change and writes it back with
``If-Match: <ETag read>`` (``If-None-Match: *`` for the first one). When another
writer got there first the write fails with 412: the change is applied again
to what is stored now, after a short random pause that grows with each attempt
(full jitter), so two gateways creating keys at once both succeed and neither
write is lost. Readers revalidate with a conditional GET (``If-None-Match``):
a 304 of a few hundred bytes while nothing changed.

A pepper never lives here: it comes from settings, so the bucket's contents
alone cannot tell a key from a guess.
"""

from __future__ import annotations

import random
import time
from typing import Literal

from functions.errors import StorageUnavailableError
from functions.keys.backend import EMPTY, UNCHANGED, Change, Seen, Snapshot, T, Unchanged
from functions.keys.records import dump_records, load_records
from functions.storage.objects import ObjectStore, WriteConflictError

INDEX = "index.json"
ATTEMPTS = 24  # writers at once, roughly, before a write gives up with a 503
BACKOFF_S = 0.01  # the first pause's upper bound, doubled each attempt…
MAX_BACKOFF_S = 1.0  # …up to this


class BucketKeys:
    kind: Literal["local", "s3"] = "s3"

    def __init__(self, objects: ObjectStore, attempts: int = ATTEMPTS) -> None:
        self._objects = objects
        self._attempts = attempts
        self._random = random.Random()

    def load(self, version: str | None) -> Snapshot | Unchanged:
        blob = self._objects.get(INDEX, etag=version)
        if blob is UNCHANGED:
            return UNCHANGED
        if blob is None:
            return UNCHANGED if version is None else EMPTY
        try:
            return Snapshot(tuple(load_records(blob.data)), blob.etag)
        except (ValueError, TypeError) as exc:  # not JSON, not records
            raise StorageUnavailableError("The key index in the bucket cannot be read.") from exc

    def update(
        self, change: Change[T], current: Snapshot, seen: Seen | None = None
    ) -> tuple[T, Snapshot]:
        latest = current
        for attempt in range(self._attempts):
            loaded = self.load(latest.version)
            latest = latest if loaded is UNCHANGED else loaded
            if seen is not None:  # a write waiting behind others' still keeps its reader fresh
                seen(latest)
            records = list(latest.records)
            result = change(records)
            data = dump_records(records)
            try:
                if latest.version is None:
                    etag = self._objects.put(INDEX, data, create=True)
                else:
                    etag = self._objects.put(INDEX, data, if_match=latest.version)
            except WriteConflictError:
                time.sleep(self._random.uniform(0, min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt)))
                continue
            return result, Snapshot(tuple(records), etag)
        raise StorageUnavailableError(
            f"The key index was changed by other writers {self._attempts} times in a row; "
            "try again."
        )
