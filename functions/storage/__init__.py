"""Durable state on operator storage: a local directory or an S3-compatible bucket.

``ENCLAVE_STORAGE_URI`` names it (:class:`StorageSettings`). A local directory keeps
each store's own file format and ``flock`` locking; ``s3://BUCKET/PREFIX`` gives
every store an :class:`~functions.storage.objects.ObjectStore` under its own key
prefix, written with conditional requests, so any number of stateless gateway
containers share one truth and write nothing to their local disks.
"""

from functions.storage.objects import Blob, ObjectStore, S3Objects, WriteConflictError
from functions.storage.settings import StorageSettings

__all__ = ["Blob", "ObjectStore", "S3Objects", "StorageSettings", "WriteConflictError"]
