"""The object store: one interface (``ObjectStore``) and its implementations.

``FilesystemObjectStore`` is the embedded default, ``S3ObjectStore`` talks to any S3 API,
and ``MemoryObjectStore`` is the fake for unit tests. Keys follow ``validate_key``.
"""

from workers.storage.base import (
    MAX_KEY_BYTES,
    ListPage,
    ObjectInfo,
    ObjectStore,
    validate_key,
    validate_prefix,
)
from workers.storage.filesystem import FilesystemObjectStore
from workers.storage.memory import MemoryObjectStore
from workers.storage.retry import RetryPolicy, call_with_retry
from workers.storage.s3 import S3ObjectStore

__all__ = [
    "MAX_KEY_BYTES",
    "FilesystemObjectStore",
    "ListPage",
    "MemoryObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "RetryPolicy",
    "S3ObjectStore",
    "call_with_retry",
    "validate_key",
    "validate_prefix",
]
