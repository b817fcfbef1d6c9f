"""A fleet on real servers: ``fuzzorch server`` and two ``fuzzorch worker`` processes on
PostgreSQL, Redis and S3, driven through the CLI client; and a worker SIGKILLed mid-job.

Timings are set to seconds (slices, heartbeats, leases, reconciliation), so the real
lease and re-dispatch mechanisms run within the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import jsonschema
import pytest

from orchestrator.demo import DEMO_BRANCH, build_example
from orchestrator.secretbox import generate_key
from tests.support.seaweed import S3ServerInfo
from tests.support.services import temporary_postgres_database
from workers.git import Git

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "orchestrator/schemas/summary.schema.json").read_text()
)
TIMINGS = {
    "FUZZORCH_SLICE_SECONDS": "10",
    "FUZZORCH_HEARTBEAT_SECONDS": "1",
    "FUZZORCH_LEASE_SECONDS": "5",
    "FUZZORCH_RECONCILE_SECONDS": "1",
    "FUZZORCH_MAX_ATTEMPTS": "4",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Fleet:
    """A running server and its workers, and how to talk to them."""

    root: Path
    env: dict[str, str]
    url: str = ""
    token: str = ""
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def log(self, name: str) -> IO[bytes]:
        """An append-only log file for a process, closed when the fleet stops."""
        handle = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed in the fixture
        self.logs.append(handle)
        return handle

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a client of the server."""
        env = {**self.env, "FUZZORCH_SERVER_URL": self.url, "FUZZORCH_TOKEN": self.token,
               "FUZZORCH_HOME": str(self.root / "client")}  # fmt: skip
        result = subprocess.run(
            [FUZZORCH, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        if check and result.returncode not in (0, 1):
            raise AssertionError(f"fuzzorch {args!r} exited {result.returncode}: {result.stderr}")
        return result

    def start_worker(self, index: int) -> subprocess.Popen[bytes]:
        """Start one worker process (one thread); it gets no database URL at all."""
        env = {k: v for k, v in self.env.items() if k != "FUZZORCH_DATABASE_URL"}
        env["FUZZORCH_HOME"] = str(self.root / f"worker-{index}")
        env["FUZZORCH_DATABASE_URL"] = "postgresql://nobody:nothing@127.0.0.1:1/none"
        log = self.log(f"worker-{index}")
        process = subprocess.Popen(
            [FUZZORCH, "worker", "--threads", "1"], env=env, stdout=log, stderr=log
        )
        self.workers.append(process)
        return process


@pytest.fixture
def fleet(
    tmp_path: Path, s3_server: S3ServerInfo, redis_url: str, redis_namespace: str
) -> Iterator[Fleet]:
    """A server and two workers on a fresh PostgreSQL database, Redis namespace and bucket."""
    with running_fleet(tmp_path, s3_server, redis_url, redis_namespace) as fleet:
        yield fleet


@contextlib.contextmanager
def running_fleet(
    tmp_path: Path, s3_server: S3ServerInfo, redis_url: str, redis_namespace: str
) -> Iterator[Fleet]:
    """Start a fleet on the given Redis; stop it when the block ends."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    bucket = f"fleet-{secrets.token_hex(6)}"
    with temporary_postgres_database() as database_url:
        env = {
            **base,
            **TIMINGS,
            "FUZZORCH_DATABASE_URL": database_url,
            "FUZZORCH_BROKER_URL": redis_url,
            "FUZZORCH_BROKER_NAMESPACE": redis_namespace,
            "FUZZORCH_STORAGE_URL": f"s3://{s3_server.access_key}:{s3_server.secret_key}"
            f"@{s3_server.endpoint}/{bucket}?secure=false",
            "FUZZORCH_ALLOW_LOCAL_REPOS": "1",
            "FUZZORCH_SECRET_KEY": generate_key(),
        }
        fleet = Fleet(tmp_path, env)
        server_env = {**env, "FUZZORCH_HOME": str(tmp_path / "server")}
        subprocess.run([FUZZORCH, "db", "upgrade"], env=server_env, check=True,
                       capture_output=True)  # fmt: skip
        fleet.token = subprocess.run(
            [FUZZORCH, "token", "create", "--role", "admin", "--name", "fleet test"],
            env=server_env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        port = _free_port()
        fleet.url = f"http://127.0.0.1:{port}"
        log = fleet.log("server")
        fleet.server = subprocess.Popen(
            [FUZZORCH, "server", "--port", str(port)], env=server_env, stdout=log, stderr=log
        )
        try:
            _wait_healthy(fleet)
            fleet.start_worker(0)
            fleet.start_worker(1)
            yield fleet
        finally:
            for process in [*fleet.workers, fleet.server]:
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in [*fleet.workers, fleet.server]:
                if process is not None:
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            for handle in fleet.logs:
                handle.close()


def _wait_healthy(fleet: Fleet) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert fleet.server is not None
        if fleet.server.poll() is not None:
            raise AssertionError((fleet.root / "server.log").read_text()[-4000:])
        try:
            if httpx.get(f"{fleet.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not answer /health within 60 s")


def _campaign(fleet: Fleet, source: Path, duration: int) -> str:
    added = fleet.cli("repo", "add", str(source), "--json")
    assert added.returncode == 0, added.stderr
    started = fleet.cli(
        "campaign", "start", "csvlite", "--branch", DEMO_BRANCH, "--duration", str(duration),
        "--workers", "2",
    )  # fmt: skip
    campaign_id = started.stdout.strip()
    assert campaign_id.startswith("cmp-"), started.stdout
    return campaign_id


def _wait(fleet: Fleet, campaign_id: str, out: Path) -> tuple[int, Any]:
    waited = fleet.cli("campaign", "wait", campaign_id, "--json", str(out), "--timeout", "240")
    assert out.exists(), waited.stderr + (fleet.root / "server.log").read_text()[-3000:]
    document = json.loads(out.read_text())
    jsonschema.validate(document, SCHEMA)
    return waited.returncode, document


def test_a_signed_push_starts_a_campaign_that_the_workers_run(fleet: Fleet, tmp_path: Path) -> None:
    source = build_example(tmp_path / "src", Git(allow_local=True))
    assert fleet.cli("repo", "add", str(source)).returncode == 0
    secret = fleet.cli("repo", "secret", "csvlite").stdout.strip()
    policy = fleet.cli("repo", "policy", "add", "csvlite", "--branch", "release/*",
                       "--duration", "25", "--workers", "2")  # fmt: skip
    assert policy.returncode == 0, policy.stderr
    commit = Git(allow_local=True).resolve(source / ".git", DEMO_BRANCH)
    body = json.dumps({"ref": f"refs/heads/{DEMO_BRANCH}", "after": commit, "deleted": False,
                       "repository": {"full_name": "team/csvlite", "clone_url": str(source)}}
                      ).encode()  # fmt: skip
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        f"{fleet.url}/api/v1/webhooks/github?repo=csvlite", content=body, timeout=10,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "fleet-1",
                 "X-Hub-Signature-256": f"sha256={signature}"},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    campaign_id = _pushed_campaign(fleet)
    code, document = _wait(fleet, campaign_id, tmp_path / "summary.json")
    assert document["campaign"]["status"] == "done"
    assert (document["campaign"]["branch"], document["campaign"]["commit"]) == (DEMO_BRANCH, commit)
    assert code == 1  # the bug is open on the release branch: the gate fails
    titles = {c["title"] for c in document["crashes"]}
    assert "IndexError in parse_line (csvlite/reader.py)" in titles
    # Both workers took jobs (each announces itself as host:pid in the attempts).
    logs = [(tmp_path / f"worker-{i}.log").read_text() for i in (0, 1)]
    assert all("thread(s) on fuzz" in log for log in logs)
    # The metrics reflect the finished campaign.
    metrics = httpx.get(f"{fleet.url}/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {fleet.token}"}).text  # fmt: skip
    assert 'fuzzorch_campaigns{status="done"} 1' in metrics
    executions = next(
        line
        for line in metrics.splitlines()
        if line.startswith('fuzzorch_executions_total{repo="csvlite"}')
    )
    assert float(executions.split()[-1]) > 1000
    assert 'fuzzorch_crash_groups{repo="csvlite",status="open"}' in metrics


def _pushed_campaign(fleet: Fleet) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(fleet.cli("campaign", "list", "--json").stdout)
        if listed:
            return str(listed[0]["id"])
        time.sleep(0.5)
    raise AssertionError("no campaign started: " + (fleet.root / "server.log").read_text()[-3000:])


def test_a_worker_killed_mid_job_costs_time_not_results(fleet: Fleet, tmp_path: Path) -> None:
    source = build_example(tmp_path / "src", Git(allow_local=True))
    campaign_id = _campaign(fleet, source, duration=30)
    time.sleep(8)  # both workers are inside their first jobs
    victim = fleet.workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    replacement = fleet.start_worker(2)  # a fresh worker joins the fleet
    code, document = _wait(fleet, campaign_id, tmp_path / "summary.json")
    assert replacement.poll() is None
    # The killed worker's job was reclaimed by the lease, not by dramatiq's slow requeue.
    assert "lost; sent attempt 2" in (tmp_path / "server.log").read_text()
    assert document["campaign"]["status"] == "done"
    titles = {c["title"] for c in document["crashes"]}
    assert "IndexError in parse_line (csvlite/reader.py)" in titles
    assert code == 1


@contextlib.contextmanager
def private_redis(root: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test's own (nothing on disk) and a function that restarts it."""
    port = _free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", str(root)]  # fmt: skip
    state: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        state["process"] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.1)
        raise AssertionError("the private Redis did not start")

    def restart() -> None:
        state["process"].terminate()
        state["process"].wait(timeout=20)
        time.sleep(2)  # clients see it gone, and everything it held is lost
        start()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        state["process"].terminate()
        state["process"].wait(timeout=20)


def test_a_redis_restart_mid_campaign_costs_time_not_results(
    tmp_path: Path, s3_server: S3ServerInfo
) -> None:
    source = build_example(tmp_path / "src", Git(allow_local=True))
    with (
        private_redis(tmp_path) as (url, restart),
        running_fleet(tmp_path, s3_server, url, "fleet-restart") as fleet,
    ):
        campaign_id = _campaign(fleet, source, duration=30)
        time.sleep(8)
        restart()  # every queued message and every in-flight report is gone
        code, document = _wait(fleet, campaign_id, tmp_path / "summary.json")
    assert document["campaign"]["status"] == "done"
    titles = {c["title"] for c in document["crashes"]}
    assert "IndexError in parse_line (csvlite/reader.py)" in titles
    assert code == 1
