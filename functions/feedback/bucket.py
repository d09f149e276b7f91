"""Ratings as objects in the operator's bucket, for stateless gateway containers.

One object per (tenant, request id, rater), under the storage's ``feedback/`` prefix::

    ratings/<tenant in hex>/<sha-256 of the request id>/<sha-256 of the rater>.json

written with a plain PUT, so a second rating by the same rater replaces the first,
whichever container took either. Ids are hashed (the first 128 bits) because a
request id may be ``.`` or ``..``, which some S3-compatible stores refuse as a key's
segment, and a token's subject can hold any character; the object itself carries
them in full. A rating is in the bucket (S3 acknowledges durable writes) before
its 200.

Which answers can be rated comes from a
:class:`~functions.feedback.index.RequestIndex` (Redis or memory). Reading every
rating lists the prefix and fetches the objects :data:`READERS` at a time: the report
and the export pay one GET per rating.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
from pydantic import TypeAdapter

from functions.feedback.index import RequestIndex
from functions.feedback.model import FeedbackRequest, Rating
from functions.storage.objects import Blob, ObjectStore

_RATING = TypeAdapter(Rating)
READERS = 16  # parallel GETs while reading every rating (boto3's pool holds 32)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def rating_key(tenant: str, request_id: str, rater: str) -> str:
    return f"ratings/{tenant.encode().hex()}/{_digest(request_id)}/{_digest(rater)}.json"


class BucketRatings:
    """Ratings in an :class:`~functions.storage.ObjectStore` (blocking: call from a thread)."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def put(self, rating: Rating) -> None:
        data = orjson.dumps(dataclasses.asdict(rating))
        self.objects.put(rating_key(rating.tenant, rating.request_id, rating.rater), data)

    def ratings(self, *, experiment: str | None = None, tenant: str | None = None) -> list[Rating]:
        prefix = f"ratings/{tenant.encode().hex()}/" if tenant is not None else "ratings/"
        keys = self.objects.keys(prefix)
        with ThreadPoolExecutor(READERS) as pool:
            blobs = list(pool.map(self.objects.get, keys))
        found = [_RATING.validate_json(b.data) for b in blobs if isinstance(b, Blob)]
        if experiment is not None:
            found = [r for r in found if r.experiment == experiment]
        return sorted(found, key=lambda r: r.ts)

    def close(self) -> None:
        """Nothing to close: the client's connections go with the process."""


class BucketFeedback:
    """A :class:`~functions.feedback.model.FeedbackStore`: the index, then the bucket."""

    def __init__(self, ratings: BucketRatings, index: RequestIndex) -> None:
        self.stored = ratings
        self.index = index

    async def remember(
        self, tenant: str, request_id: str, experiment: str | None, variant: str | None
    ) -> None:
        await self.index.remember(tenant, request_id, (experiment, variant))

    async def rate(
        self, tenant: str, rater: str, body: FeedbackRequest, comment: str | None
    ) -> bool:
        answered = await self.index.lookup(tenant, body.request_id)
        if answered is None:
            return False
        experiment, variant = answered
        rating = Rating(
            tenant, body.request_id, rater, body.rating, comment, experiment, variant, time.time()
        )
        await asyncio.to_thread(self.stored.put, rating)
        return True

    async def aclose(self) -> None:
        await self.index.aclose()
