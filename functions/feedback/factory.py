"""The feedback store the settings name, for the gateway and for the offline readers."""

from __future__ import annotations

from pathlib import Path

from functions.feedback.bucket import BucketFeedback, BucketRatings
from functions.feedback.index import MemoryIndex, RequestIndex
from functions.feedback.model import DAY_S, FeedbackStore, RatingsReader
from functions.feedback.sqlite import SQLiteFeedback, store_path
from functions.settings import Settings
from functions.storage.objects import S3Objects


def feedback_store(settings: Settings, audit_directory: Path) -> FeedbackStore:
    """SQLite beside the local audit log, or the bucket's ratings behind an index.

    Nothing is connected until first use. With a bucket, nothing is written locally.
    """
    window_days = settings.gateway.feedback_window_days
    if not settings.storage.remote:
        return SQLiteFeedback(store_path(audit_directory), window_days)
    return BucketFeedback(_bucket_ratings(settings), request_index(settings))


def request_index(settings: Settings) -> RequestIndex:
    """Redis when the rate limits are counted there (every container shares it), else memory."""
    window_s = settings.gateway.feedback_window_days * DAY_S
    limits = settings.gateway.rate_limit
    if limits.backend != "redis":
        return MemoryIndex(window_s)
    from functions.feedback.redis import RedisIndex  # redis.asyncio: ~0.2 s to import

    # one namespace per deployment: two sharing a Redis never take each other's answers
    bucket, prefix = settings.storage.location()
    namespace = f"enclave:feedback:{bucket}/{prefix}:"
    url = limits.redis_url.get_secret_value()
    return RedisIndex(url, namespace, window_s, timeout_s=limits.store_timeout_s)


def ratings_reader(settings: Settings, audit_directory: Path) -> RatingsReader | None:
    """Where the report and the export read ratings; None where nothing was ever rated."""
    if settings.storage.remote:
        return _bucket_ratings(settings)
    path = store_path(audit_directory)
    return SQLiteFeedback(path) if path.exists() else None


def _bucket_ratings(settings: Settings) -> BucketRatings:
    return BucketRatings(S3Objects.from_settings(settings.storage).scoped("feedback"))
