"""Building the adapters from settings: the one place that turns settings into objects."""

from __future__ import annotations

from orchestrator.errors import SettingsError
from orchestrator.settings import Settings, StorageLocation
from workers.git import Git
from workers.storage.base import ObjectStore
from workers.storage.filesystem import FilesystemObjectStore
from workers.storage.s3 import S3ObjectStore


def open_object_store(location: StorageLocation) -> ObjectStore:
    """The object store a ``FUZZORCH_STORAGE_URL`` names."""
    if location.directory is not None:
        return FilesystemObjectStore(location.directory)
    if location.s3 is not None:
        s3 = location.s3
        return S3ObjectStore(
            s3.endpoint,
            s3.access_key,
            s3.secret_key,
            s3.bucket,
            secure=s3.secure,
            region=s3.region,
        )
    raise SettingsError(f"no object store configured in {location!r}")  # pragma: no cover


def make_git(settings: Settings, *, embedded: bool) -> Git:
    """The git adapter; local sources are allowed on a laptop, and on a server only when
    ``FUZZORCH_ALLOW_LOCAL_REPOS`` says so."""
    return Git(allow_local=embedded or settings.allow_local_repos)
