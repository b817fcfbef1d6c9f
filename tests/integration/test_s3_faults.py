"""The S3 store against failures: bad credentials, no server, a scripted faulty server, and
a real SeaweedFS that is killed and restarted while a write is in flight. Also what only the
real server can show: conditional writes (``If-None-Match``) and multipart uploads.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.seaweed import (
    S3ServerInfo,
    SeaweedServer,
    WeedUnavailable,
    free_ports,
    running_seaweed,
)
from tests.support.services import service_unavailable
from workers.errors import ObjectNotFoundError, StorageError, TransientStorageError
from workers.storage.s3 import MIN_PART_SIZE, S3ObjectStore

pytestmark = pytest.mark.s3

MiB = 1 << 20


# -- credentials ---------------------------------------------------------------------------


def test_a_wrong_secret_fails_at_once_without_showing_the_secret(s3_server: S3ServerInfo) -> None:
    wrong = "WRONG-secret-value-1234567890"
    store = S3ObjectStore(
        s3_server.endpoint, s3_server.access_key, wrong, "fz-denied", region=s3_server.region
    )
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        store.put_if_absent("corpus/r/h/k", b"data")
    elapsed = time.monotonic() - started

    assert not isinstance(info.value, TransientStorageError)
    assert elapsed < 2.0  # not retried: the default policy would sleep 0.25 s or more
    message = str(info.value)
    # SeaweedFS answers the first request (HEAD bucket) with a bare 403: AccessDenied.
    assert re.search("AccessDenied|SignatureDoesNotMatch", message), message
    assert s3_server.endpoint in message
    assert "'fz-denied'" in message
    assert "'corpus/r/h/k'" in message
    for text in (message, repr(store), store.describe(), repr(info.value.__cause__)):
        assert wrong not in text
        assert s3_server.secret_key not in text


def test_an_unknown_access_key_is_terminal(s3_server: S3ServerInfo) -> None:
    store = S3ObjectStore(
        s3_server.endpoint, "nobody", s3_server.secret_key, "fz-denied", region=s3_server.region
    )
    with pytest.raises(StorageError, match=r"AccessDenied|InvalidAccessKeyId") as info:
        store.get("some/key")
    assert not isinstance(info.value, (TransientStorageError, ObjectNotFoundError))
    assert s3_server.secret_key not in str(info.value)


# -- no server, or a misbehaving one -------------------------------------------------------


def test_nothing_listening_gives_a_transient_error_after_bounded_retries() -> None:
    (port,) = free_ports(1)
    store = S3ObjectStore(f"127.0.0.1:{port}", "a", "s", "fz-bucket", retries=2, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(TransientStorageError) as info:
        store.put_if_absent("k", b"data")
    elapsed = time.monotonic() - started

    assert elapsed < 5.0  # at most 0.5 s + 1.0 s of backoff, refusals are instant
    assert elapsed >= 0.7  # two backoff pauses of at least 0.25 s and 0.5 s happened
    message = str(info.value)
    assert "3 attempt(s)" in message
    assert f"127.0.0.1:{port}" in message
    assert "'fz-bucket'" in message
    assert info.value.__cause__ is not None


def test_a_server_that_never_answers_times_out_and_is_retried() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (kernel backlog) but never answers
        endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
        store = S3ObjectStore(endpoint, "a", "s", "fz-bucket", retries=1, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TransientStorageError, match="2 attempt"):
            store.exists("k")
        assert time.monotonic() - started < 4.0


class ScriptedS3(http.server.ThreadingHTTPServer):
    """A fake S3 endpoint: answers PUTs from a script, and counts them."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = list(script)
        self.puts = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedS3

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        # HEAD bucket: it exists; HEAD object: not found (so the store goes on to PUT).
        self.send_response(404 if self.path.strip("/").count("/") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.puts += 1
        status, code = self.server.script.pop(0) if self.server.script else (200, "")
        body = b""
        if code:
            body = (
                f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>scripted</Message>"
                f"<Resource>{self.path}</Resource><RequestId>1</RequestId></Error>"
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if status == 200:
            self.send_header("ETag", '"0123"')
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def scripted() -> Iterator[ScriptedS3]:
    server = ScriptedS3([])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    "failures",
    [
        [(503, "SlowDown"), (503, "ServiceUnavailable")],
        [(500, "InternalError")],
        [(429, "Throttling")],
        [(502, "")],  # a proxy's bare 502, not XML
    ],
)
def test_transient_server_answers_are_retried_until_success(
    scripted: ScriptedS3, failures: list[tuple[int, str]]
) -> None:
    scripted.script = list(failures)
    store = S3ObjectStore(scripted.endpoint, "a", "s", "fz-b", region="us-east-1", retries=3)
    assert store.put_if_absent("k/v", b"data") is True
    assert scripted.puts == len(failures) + 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "AccessDenied"), (404, "NoSuchBucket"), (400, "InvalidArgument")],
)
def test_terminal_server_answers_are_not_retried(
    scripted: ScriptedS3, status: int, code: str
) -> None:
    scripted.script = [(status, code)]
    store = S3ObjectStore(scripted.endpoint, "a", "s", "fz-b", region="us-east-1", retries=3)
    with pytest.raises(StorageError, match=code) as info:
        store.put_if_absent("k/v", b"data")
    assert not isinstance(info.value, TransientStorageError)
    assert scripted.puts == 1
    assert "'k/v'" in str(info.value)


def test_retries_run_out_on_a_server_that_stays_overloaded(scripted: ScriptedS3) -> None:
    scripted.script = [(503, "SlowDown")] * 10
    store = S3ObjectStore(scripted.endpoint, "a", "s", "fz-b", region="us-east-1", retries=2)
    with pytest.raises(TransientStorageError, match="SlowDown") as info:
        store.put_if_absent("k/v", b"data")
    assert scripted.puts == 3
    assert "3 attempt(s)" in str(info.value)


# -- what the real server does ---------------------------------------------------------------


def skip_first_existence_check(store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next existence check say "absent", as if another writer raced us to it."""
    real_head = store._head
    calls = []

    def head(key: str) -> int | None:
        calls.append(key)
        return None if len(calls) == 1 else real_head(key)

    monkeypatch.setattr(store, "_head", head)


def test_if_none_match_keeps_the_first_write_even_when_the_check_is_skipped(
    s3_store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert s3_store.put_if_absent("crashes/r/h/k", b"first") is True
    # Pretend the existence check raced with another writer: only If-None-Match is left.
    skip_first_existence_check(s3_store, monkeypatch)
    assert s3_store.put_if_absent("crashes/r/h/k", b"second") is False
    assert s3_store.get("crashes/r/h/k") == b"first"


def test_multipart_upload_round_trips_and_is_conditional_too(
    s3_server: S3ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_server.store(f"fz-multipart-{os.getpid()}", part_size=MIN_PART_SIZE)
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(11 * MiB))  # three parts: 5 + 5 + 1 MiB
    second.write_bytes(os.urandom(6 * MiB))

    assert store.put_file_if_absent("corpus/r/h/big", first) is True
    target = tmp_path / "copy.bin"
    assert store.get_to_file("corpus/r/h/big", target) == 11 * MiB
    assert hashlib.sha256(target.read_bytes()).digest() == (
        hashlib.sha256(first.read_bytes()).digest()
    )

    skip_first_existence_check(store, monkeypatch)
    assert store.put_file_if_absent("corpus/r/h/big", second) is False
    assert store.stat("corpus/r/h/big").size == 11 * MiB
    # The refused upload was aborted rather than left to hold its parts.
    uploads = store._client._list_multipart_uploads(store._bucket)
    assert [upload.object_name for upload in uploads.uploads] == []


def test_the_bucket_is_created_once_even_by_racing_stores(s3_server: S3ServerInfo) -> None:
    bucket = f"fz-shared-{os.getpid()}"
    stores = [s3_server.store(bucket) for _ in range(4)]
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda s=s, i=i: results.append(s.put_if_absent(f"k{i}", b"v")))
        for i, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [True] * 4
    assert list(stores[0].iter_keys("")) == ["k0", "k1", "k2", "k3"]


# -- a server that dies and comes back --------------------------------------------------------


@pytest.fixture
def private_server() -> Iterator[SeaweedServer]:
    """A SeaweedFS of this test's own, which it may kill and restart."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_seaweed())
        except WeedUnavailable as exc:
            service_unavailable("S3 (SeaweedFS)", str(exc))
        yield server


def test_a_put_issued_while_the_server_is_down_succeeds_once_it_is_back(
    private_server: SeaweedServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = private_server.info.store("fz-restart", retries=8, timeout=5.0)
    assert store.put_if_absent("before/crash", b"kept") is True

    private_server.stop(grace=0)  # a crash: SIGKILL
    outcome: dict[str, object] = {}

    def put_while_down() -> None:
        started = time.monotonic()
        try:
            outcome["result"] = store.put_if_absent("after/restart", b"made it")
        except BaseException as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    caplog.set_level(logging.WARNING, logger="workers.storage.retry")
    writer = threading.Thread(target=put_while_down)
    writer.start()
    time.sleep(2.0)
    assert writer.is_alive(), "the put returned while the server was down"
    private_server.restart()
    writer.join(timeout=60)

    assert not writer.is_alive()
    assert outcome.get("error") is None, outcome.get("error")
    assert outcome["result"] is True
    assert isinstance(outcome["elapsed"], float)
    assert outcome["elapsed"] >= 2.0
    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert store.get("after/restart") == b"made it"
    assert store.get("before/crash") == b"kept"
