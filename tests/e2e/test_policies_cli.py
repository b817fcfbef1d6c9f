"""``fuzzorch repo secret`` and ``fuzzorch repo policy`` on the embedded state."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from orchestrator.secretbox import SecretBox, generate_key, parse_key
from orchestrator.store import webhooks
from orchestrator.store.database import Database
from tests.e2e.test_run_cli import FUZZORCH
from tests.support import fixture_repos


def _cli(home: Path, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    env["FUZZORCH_HOME"] = str(home)
    if key is not None:
        env["FUZZORCH_SECRET_KEY"] = key
    return subprocess.run([FUZZORCH, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_secrets_are_shown_once_and_stored_sealed_and_policies_round_trip(
    tmp_path: Path,
) -> None:
    home, key = tmp_path / "home", generate_key()
    source = fixture_repos.mixed_tests(tmp_path).path
    assert _cli(home, "repo", "add", str(source), "--name", "mixed", key=key).returncode == 0
    shown = _cli(home, "repo", "secret", "mixed", key=key)
    assert shown.returncode == 0, shown.stderr
    secret = shown.stdout.strip()
    database = Database.open(f"sqlite:///{home / 'fuzzorch.db'}")
    try:
        with database.transaction() as conn:
            sealed = webhooks.sealed_secret(conn, "mixed")
    finally:
        database.dispose()
    assert sealed is not None
    assert secret not in sealed
    assert SecretBox(parse_key(key)).open(sealed, context="mixed").decode() == secret

    no_key = _cli(home, "repo", "secret", "mixed", key=None)
    assert no_key.returncode == 2
    assert "FUZZORCH_SECRET_KEY" in no_key.stderr

    added = _cli(home, "repo", "policy", "add", "mixed", "--branch", "release/*",
                 "--duration", "120", "--workers", "3", "--fail-on", "new", key=key)  # fmt: skip
    assert added.returncode == 0, added.stderr
    again = _cli(home, "repo", "policy", "add", "mixed", "--branch", "release/*", key=key)
    assert again.returncode == 2
    assert "'release/*'" in again.stderr
    bad = _cli(home, "repo", "policy", "add", "mixed", "--branch", "../etc", key=key)
    assert bad.returncode == 2
    assert "'../etc'" in bad.stderr
    listed = json.loads(_cli(home, "repo", "policy", "list", "mixed", "--json", key=key).stdout)
    assert [(p["branch"], p["duration"], p["workers"], p["fail_on"]) for p in listed] == [
        ("release/*", 120.0, 3, "new")
    ]
    removed = _cli(home, "repo", "policy", "remove", "mixed", "--branch", "release/*", key=key)
    assert removed.returncode == 0
    gone = _cli(home, "repo", "policy", "remove", "mixed", "--branch", "release/*", key=key)
    assert gone.returncode == 2
    assert "no policy for 'release/*'" in gone.stderr
