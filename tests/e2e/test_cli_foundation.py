"""The installed ``fuzzorch`` command: exit codes, stdout/stderr, settings errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from orchestrator.store import migrate, tokens

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    return subprocess.run(
        [FUZZORCH, *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_migrates_postgres_and_prints_the_revision(
    tmp_path: Path, postgres_url: str
) -> None:
    result = _run(["db", "upgrade"], {"FUZZORCH_DATABASE_URL": postgres_url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision()


def test_token_create_prints_only_a_working_token(tmp_path: Path) -> None:
    result = _run(["token", "create", "--role", "triager"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(tokens.TOKEN_PREFIX)
    # The embedded store lives under ./.fuzzorch and holds only the hash.
    engine = sa.create_engine(f"sqlite:///{tmp_path / '.fuzzorch' / 'fuzzorch.db'}")
    with engine.connect() as conn:
        role, stored = conn.execute(sa.text("SELECT role, token_hash FROM api_tokens")).one()
    engine.dispose()
    assert role == "triager"
    assert stored == tokens.hash_token(line)


def test_a_bad_role_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(["token", "create", "--role", "root"], {}, tmp_path)
    assert result.returncode == 2
    assert "Invalid role 'root'" in result.stderr
    assert result.stdout == ""


def test_a_malformed_setting_exits_2_naming_variable_and_value(tmp_path: Path) -> None:
    result = _run(["db", "upgrade"], {"FUZZORCH_BROKER_URL": "amqp://guest@h"}, tmp_path)
    assert result.returncode == 2
    assert "FUZZORCH_BROKER_URL='amqp://guest@h'" in result.stderr
    assert result.stdout == ""


def test_an_unreachable_database_is_an_infrastructure_failure(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none?connect_timeout=2"
    result = _run(["token", "create", "--role", "admin"], {"FUZZORCH_DATABASE_URL": url}, tmp_path)
    assert result.returncode == 3
    assert "could not reach the database" in result.stderr
    assert "secretpw" not in result.stderr
