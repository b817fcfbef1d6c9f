"""An object store on any S3 API, through the ``minio`` client.

Put-if-absent sends ``If-None-Match: *`` (on a plain PUT and on CompleteMultipartUpload):
the server then refuses to overwrite with 412, which makes the write atomic even between
racing workers. SeaweedFS 4.48 honours it (checked: of 8 racing writers exactly one wins);
a server that ignored it would only make the stat-then-put race possible, which is
harmless for content-addressed keys. The public ``minio`` API cannot send that header, so
the conditional requests go through its internal ``_execute``/multipart helpers (minio 7.2);
``tests/integration/test_s3_faults.py`` catches a change there.

Every request is retried on its own (``retry.py``); the minio and urllib3 failures are
translated first into ``TransientStorageError`` (worth retrying) or ``StorageError``. A
write whose answer was lost is retried, meets 412 and reports False ("not written by this
call"): harmless for content-addressed keys, and the object is there either way.

Listing order is the server's. AWS and MinIO use plain key order, as the other stores do;
SeaweedFS 4.48 walks folders instead ('p/a/b' before 'p/a-c'), and a ``start_after`` that
names a folder skips that folder's keys. Pagination on it stays complete because page
tokens are object keys, unless a key is also the folder of other keys. The filesystem and
memory stores refuse such keys; here a put of ``a/b`` beside ``a/b/c`` is refused too
(SeaweedFS answers 412), but ``a/b/c`` beside ``a/b`` is not checked: that would cost a
request per folder level on every put, and the key layout never nests objects.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar
from xml.etree.ElementTree import Element, SubElement, tostring

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import DictType, check_bucket_name
from urllib3 import exceptions as u3

from workers.errors import StorageError, TransientStorageError, WorkerError
from workers.storage.base import (
    DEFAULT_PAGE_LIMIT,
    ListPage,
    ObjectInfo,
    ObjectStore,
    key_conflict,
    not_found,
    too_large,
    validate_key,
    validate_limit,
    validate_max_bytes,
    validate_prefix,
    write_file_atomically,
)
from workers.storage.retry import RetryPolicy, call_with_retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest allowed part (except the last)
DEFAULT_PART_SIZE = 16 * 1024 * 1024
_CHUNK = 1 << 20
_OCTETS = "application/octet-stream"

# The declared classification. Codes here win over the HTTP status; any other error is
# transient when the status is 5xx or 429, terminal otherwise.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "OperationAborted",
        "ConditionalRequestConflict",  # AWS: a concurrent conditional write is in progress
        "XMinioServerNotInitialized",
    }
)
TERMINAL_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "BucketAlreadyExists",
        "AccountProblem",
        "NotImplemented",
    }
)
# Network failures where the same request may well succeed later.
TRANSIENT_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    u3.TimeoutError,  # includes connection refused (NewConnectionError) and DNS failures
    u3.ProtocolError,  # connection reset or closed mid-response
    u3.MaxRetryError,
    http.client.HTTPException,  # includes IncompleteRead (truncated body)
    ConnectionError,
    TimeoutError,
)


class S3ObjectStore(ObjectStore):
    """Objects in one bucket of an S3 API (MinIO, SeaweedFS, AWS)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        retries: int = 5,
        timeout: float = 30.0,
        part_size: int = DEFAULT_PART_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._endpoint = endpoint
        self._bucket = bucket
        self._url = f"{'https' if secure else 'http'}://{endpoint}"
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"Invalid part_size {part_size!r}: S3 needs >= {MIN_PART_SIZE}")
        self._part_size = part_size
        self._policy = RetryPolicy(retries=retries)
        self._sleep = sleep
        http_client = urllib3.PoolManager(
            maxsize=32,
            # A short connect timeout: an unreachable server should fail fast and be retried.
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
            retries=False,  # ours (retry.py) are the only retries
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        try:
            check_bucket_name(bucket)
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http_client,
            )
        except ValueError as exc:
            raise StorageError(f"Invalid S3 settings for {self.describe()}: {exc}") from exc
        self._bucket_ready = False

    def describe(self) -> str:
        """Endpoint and bucket, for logs and errors (never the credentials)."""
        return f"S3 bucket {self._bucket!r} at {self._url}"

    # -- writing ---------------------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless something is there; True if this call wrote it."""
        validate_key(key)
        self._ensure_bucket(key)
        if self._head(key) is not None:
            return False
        body = bytes(data)
        return self._call("put", key, lambda: self._put_new(key, body)) or self._refused(key)

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        """Like ``put_if_absent`` with a local file; big files go up in parts (bounded memory)."""
        validate_key(key)
        self._ensure_bucket(key)
        if self._head(key) is not None:
            return False
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            if size <= self._part_size:
                body = source.read()
                written = self._call("put", key, lambda: self._put_new(key, body))
                return written or self._refused(key)
            return self._put_multipart(key, source)

    def _put_new(self, key: str, body: bytes) -> bool:
        """One conditional PUT; False when the server refuses it with 412."""
        headers: DictType = {"Content-Type": _OCTETS, "If-None-Match": "*"}
        try:
            self._client._put_object(self._bucket, key, body, headers)
        except S3Error as exc:
            if exc.code == "PreconditionFailed":
                return False
            raise
        return True

    def _put_multipart(self, key: str, source: BinaryIO) -> bool:
        """Upload ``source`` part by part, then complete only if the key is still free."""
        upload_id = self._call(
            "start upload",
            key,
            lambda: self._client._create_multipart_upload(
                self._bucket, key, {"Content-Type": _OCTETS}
            ),
        )
        try:
            parts: list[Part] = []
            while chunk := source.read(self._part_size):
                number = len(parts) + 1
                upload = functools.partial(
                    self._client._upload_part, self._bucket, key, chunk, None, upload_id, number
                )
                etag = self._call(f"upload part {number}", key, upload)
                parts.append(Part(number, etag))
            outcome = self._call(
                "complete upload", key, lambda: self._complete(key, upload_id, parts)
            )
        except BaseException:
            self._abort(key, upload_id)
            raise
        if outcome is True:
            return True
        if outcome is False:
            self._abort(key, upload_id)
            return self._refused(key)
        # NoSuchUpload: an earlier attempt completed it but its answer was lost (or the
        # upload was aborted behind our back, which the check below turns into an error).
        if self._head(key) is not None:
            return False
        raise StorageError(f"S3 upload of {key!r} vanished before completion in {self.describe()}")

    def _complete(self, key: str, upload_id: str, parts: list[Part]) -> bool | None:
        """CompleteMultipartUpload with ``If-None-Match: *``.

        True when done, False when refused with 412, None when the upload is unknown.
        """
        root = Element("CompleteMultipartUpload")
        for part in parts:
            tag = SubElement(root, "Part")
            SubElement(tag, "PartNumber").text = str(part.part_number)
            SubElement(tag, "ETag").text = f'"{part.etag}"'
        headers: DictType = {"Content-Type": "application/xml", "If-None-Match": "*"}
        try:
            response = self._client._execute(
                "POST",
                self._bucket,
                key,
                body=tostring(root),
                headers=headers,
                query_params={"uploadId": upload_id},
            )
        except S3Error as exc:
            if exc.code == "PreconditionFailed":
                return False
            if exc.code == "NoSuchUpload":
                return None
            raise
        # S3 may report a failed completion inside a 200 response.
        if b"<Error>" in response.data:
            raise S3Error.fromxml(response)
        return True

    def _refused(self, key: str) -> bool:
        """After a 412: False if an object holds the key; else a folder does, so refuse."""
        if self._head(key) is not None:
            return False
        # SeaweedFS answers 412 when the key is a folder of other keys ('a/b' beside 'a/b/c').
        raise key_conflict(self, key, key + "/")

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: drop an unfinished multipart upload so its parts do not linger."""
        try:
            self._client._abort_multipart_upload(self._bucket, key, upload_id)
        except Exception as exc:  # the original failure matters more than this one
            logger.warning("could not abort upload of %r in %s: %s", key, self.describe(), exc)

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; ``StorageError`` if it is larger than ``max_bytes``."""
        validate_key(key)
        validate_max_bytes(max_bytes)
        self._ensure_bucket(key)

        def read() -> bytes:
            with self._stream(key, max_bytes) as chunks:
                return b"".join(chunks)

        return self._call("get", key, read)

    def get_to_file(self, key: str, path: Path) -> int:
        """Download the object into ``path`` (atomically replaced) and return its size."""
        validate_key(key)
        self._ensure_bucket(key)

        def download() -> int:
            with self._stream(key, None) as chunks:
                return write_file_atomically(Path(path), chunks)

        return self._call("download", key, download)

    @contextlib.contextmanager
    def _stream(self, key: str, max_bytes: int | None) -> Iterator[Iterator[bytes]]:
        """The object's body in chunks, checked against its length and ``max_bytes``."""
        response = self._client.get_object(self._bucket, key)
        try:
            length = int(response.headers.get("content-length", "-1"))
            if max_bytes is not None and length > max_bytes:
                raise too_large(self, key, length, max_bytes)
            yield self._chunks(key, response.stream(_CHUNK), length, max_bytes)
        finally:
            response.close()
            response.release_conn()

    def _chunks(
        self, key: str, chunks: Iterator[bytes], length: int, max_bytes: int | None
    ) -> Iterator[bytes]:
        """Pass chunks through, refusing more than ``max_bytes`` or fewer than announced."""
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                raise too_large(self, key, received, max_bytes)
            yield chunk
        if 0 <= length != received:
            raise http.client.IncompleteRead(b"", length - received)

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""
        validate_key(key)
        self._ensure_bucket(key)
        return self._head(key) is not None

    def stat(self, key: str) -> ObjectInfo:
        """The object's key and size."""
        validate_key(key)
        self._ensure_bucket(key)
        size = self._head(key)
        if size is None:
            raise not_found(self, key)
        return ObjectInfo(key=key, size=size)

    def _head(self, key: str) -> int | None:
        """The object's size, or None when nothing is stored under ``key``."""

        def head() -> int | None:
            try:
                info = self._client.stat_object(self._bucket, key)
            except S3Error as exc:
                if exc.code in {"NoSuchKey", "NoSuchObject"}:
                    return None
                raise
            return None if info.is_dir else int(info.size or 0)

        return self._call("stat", key, head)

    # -- listing and deleting --------------------------------------------------------------

    def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = DEFAULT_PAGE_LIMIT
    ) -> ListPage:
        """Up to ``limit`` keys that start with ``prefix`` and sort after ``start_after``."""
        validate_prefix(prefix)
        validate_prefix(start_after)
        validate_limit(limit)
        self._ensure_bucket(prefix)

        def page() -> list[str]:
            keys: list[str] = []
            listing = self._client.list_objects(
                self._bucket, prefix=prefix or None, recursive=True, start_after=start_after or None
            )
            for item in listing:
                name = item.object_name
                if item.is_dir or name is None:
                    continue
                keys.append(name)
                if len(keys) > limit:
                    break
            return keys

        keys = self._call("list", prefix, page)
        if len(keys) > limit:
            return ListPage(tuple(keys[:limit]), keys[limit - 1])
        return ListPage(tuple(keys), None)

    def delete(self, key: str) -> bool:
        """Remove the object if present; True if something was deleted."""
        validate_key(key)
        self._ensure_bucket(key)
        # S3's DELETE answers 204 either way; ask first so the result means something.
        if self._head(key) is None:
            return False
        self._call("delete", key, lambda: self._client.remove_object(self._bucket, key))
        return True

    # -- plumbing --------------------------------------------------------------------------

    def _ensure_bucket(self, key: str) -> None:
        """Create the bucket on first use (``key`` names the caller's object in errors).

        Another process creating it first is fine.
        """
        if self._bucket_ready:
            return

        def create() -> None:
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket)
            except S3Error as exc:
                if exc.code != "BucketAlreadyOwnedByYou":
                    raise
                logger.debug("bucket %r was created concurrently", self._bucket)

        self._call("bucket setup", key, create)
        self._bucket_ready = True  # a benign race: a second creator tolerates the first

    def _call(self, action: str, key: str, operation: Callable[[], T]) -> T:
        """Run one S3 request with translated errors and retries."""

        def attempt() -> T:
            try:
                return operation()
            except (MinioException, u3.HTTPError, http.client.HTTPException, OSError) as exc:
                error = self._translate(exc, action, key)
                if error is None:
                    raise
                raise error from exc

        what = f"S3 {action} for {key!r}"
        return call_with_retry(attempt, policy=self._policy, what=what, sleep=self._sleep)

    def _translate(self, exc: BaseException, action: str, key: str) -> WorkerError | None:
        """The storage error for a client failure, or None for a local error to re-raise."""
        if isinstance(exc, S3Error) and exc.code in {"NoSuchKey", "NoSuchObject"}:
            return not_found(self, key)
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else 0
            detail = f"{exc.code}: {exc.message} (HTTP {status})"
            transient = exc.code in TRANSIENT_CODES or (
                exc.code not in TERMINAL_CODES and (status >= 500 or status == 429)
            )
        elif isinstance(exc, ServerError | InvalidResponseError):
            status = exc.status_code if isinstance(exc, ServerError) else _status_of(exc)
            detail = f"{type(exc).__name__}: HTTP {status}"
            transient = status >= 500 or status == 429
        elif isinstance(exc, TRANSIENT_NETWORK_ERRORS):
            detail, transient = f"{type(exc).__name__}: {exc}", True
        elif isinstance(exc, u3.HTTPError | MinioException):
            detail, transient = f"{type(exc).__name__}: {exc}", False
        else:
            return None  # a local OSError (e.g. the caller's path): not the store's failure
        message = f"S3 {action} failed for {key!r} in {self.describe()}: {detail}"
        return TransientStorageError(message) if transient else StorageError(message)


def _status_of(exc: InvalidResponseError) -> int:
    """The HTTP status minio saw with a non-XML answer (kept in a private attribute)."""
    status = getattr(exc, "_code", 0)
    return status if isinstance(status, int) else 0
