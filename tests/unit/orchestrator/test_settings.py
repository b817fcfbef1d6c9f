"""Settings: defaults, parsing, and errors that name the variable and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SettingsError
from orchestrator.settings import S3Location, Settings, mask_url


def test_defaults_put_everything_under_the_home(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.home == tmp_path / ".fuzzorch"
    assert settings.database_url == f"sqlite:///{tmp_path / '.fuzzorch' / 'fuzzorch.db'}"
    assert settings.broker_url == "memory://"
    assert settings.storage.directory == tmp_path / ".fuzzorch" / "objects"
    assert settings.storage.s3 is None
    assert settings.embedded
    assert not settings.allow_local_repos
    assert settings.timings.slice_seconds == 120.0
    assert settings.timings.max_attempts == 3


def test_a_relative_home_is_resolved_against_the_working_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"FUZZORCH_HOME": "state"}, cwd=tmp_path)
    assert settings.home == tmp_path / "state"
    assert settings.storage.directory == tmp_path / "state" / "objects"


def test_s3_url_is_parsed_into_a_location() -> None:
    settings = Settings.from_env(
        {"FUZZORCH_STORAGE_URL": "s3://AK:s%2Fcret@127.0.0.1:8333/fuzz-objects?secure=true"}
    )
    assert settings.storage.s3 == S3Location(
        endpoint="127.0.0.1:8333",
        access_key="AK",
        secret_key="s/cret",
        bucket="fuzz-objects",
        secure=True,
        region=None,
    )
    assert "s/cret" not in repr(settings)
    assert "s%2Fcret" not in repr(settings)


def test_postgres_urls_get_the_psycopg_driver() -> None:
    settings = Settings.from_env({"FUZZORCH_DATABASE_URL": "postgres://u:p@db:5432/fuzz"})
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/fuzz"
    assert settings.database_url_masked == "postgresql+psycopg://u:***@db:5432/fuzz"
    assert "u:p@" not in repr(settings)


def test_timings_are_settings() -> None:
    settings = Settings.from_env(
        {
            "FUZZORCH_SLICE_SECONDS": "2.5",
            "FUZZORCH_HEARTBEAT_SECONDS": "0.5",
            "FUZZORCH_LEASE_SECONDS": "3",
            "FUZZORCH_RECONCILE_SECONDS": "1",
            "FUZZORCH_MAX_ATTEMPTS": "2",
        }
    )
    t = settings.timings
    assert (t.slice_seconds, t.heartbeat_seconds, t.lease_seconds, t.reconcile_seconds) == (
        2.5,
        0.5,
        3.0,
        1.0,
    )
    assert t.max_attempts == 2


def test_server_mode_needs_a_url_and_carries_the_token() -> None:
    settings = Settings.from_env(
        {"FUZZORCH_SERVER_URL": "http://127.0.0.1:8000/", "FUZZORCH_TOKEN": "fzo_abc"}
    )
    assert settings.server_url == "http://127.0.0.1:8000"
    assert settings.token == "fzo_abc"
    assert not settings.embedded
    assert "fzo_abc" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FUZZORCH_SLICE_SECONDS", "soon", "FUZZORCH_SLICE_SECONDS='soon' is invalid"),
        ("FUZZORCH_LEASE_SECONDS", "-5", "greater than 0"),
        ("FUZZORCH_LEASE_SECONDS", "nan", "finite"),
        ("FUZZORCH_MAX_ATTEMPTS", "2.5", "FUZZORCH_MAX_ATTEMPTS='2.5' is invalid"),
        ("FUZZORCH_BROKER_URL", "amqp://x", "FUZZORCH_BROKER_URL='amqp://x'"),
        ("FUZZORCH_BROKER_URL", "redis://h:99999/0", "port"),
        ("FUZZORCH_BROKER_URL", "redis://h:6379/zero", "'zero'"),
        ("FUZZORCH_DATABASE_URL", "mysql://x/y", "FUZZORCH_DATABASE_URL='mysql://x/y'"),
        ("FUZZORCH_STORAGE_URL", "ftp://x/y", "FUZZORCH_STORAGE_URL='ftp://x/y'"),
        ("FUZZORCH_STORAGE_URL", "s3://h:9000/bucket", "ACCESS:SECRET"),
        ("FUZZORCH_STORAGE_URL", "s3://a:b@h:9000/", "bucket"),
        ("FUZZORCH_STORAGE_URL", "s3://a:b@h:9000/B_ad", "'B_ad'"),
        ("FUZZORCH_STORAGE_URL", "s3://a:b@h:9000/ok-bucket?tls=1", "'tls'"),
        ("FUZZORCH_SERVER_URL", "localhost:8000", "FUZZORCH_SERVER_URL='localhost:8000'"),
        ("FUZZORCH_ALLOW_LOCAL_REPOS", "maybe", "FUZZORCH_ALLOW_LOCAL_REPOS='maybe'"),
        ("FUZZORCH_LOG_LEVEL", "loud", "FUZZORCH_LOG_LEVEL='loud'"),
        ("FUZZORCH_TOKEN", "two words", "FUZZORCH_TOKEN=***"),
        ("FUZZORCH_TRIAGE_RUNS", "0", "FUZZORCH_TRIAGE_RUNS='0' is invalid"),
        ("FUZZORCH_TRIAGE_RUNS", "101", "1 to 100"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert message in str(error.value)
    assert error.value.exit_code == 2


def test_secrets_are_masked_in_errors() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"FUZZORCH_STORAGE_URL": "s3://key:hunter2@h:9000/x"})
    assert "hunter2" not in str(error.value)
    assert "key:***@h:9000" in str(error.value)
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"FUZZORCH_TOKEN": "secret value"})
    assert "secret" not in str(error.value)


def test_heartbeats_must_come_more_often_than_the_lease_runs_out() -> None:
    with pytest.raises(SettingsError, match=r"FUZZORCH_HEARTBEAT_SECONDS=30\.0"):
        Settings.from_env({"FUZZORCH_HEARTBEAT_SECONDS": "30", "FUZZORCH_LEASE_SECONDS": "20"})


def test_mask_url_leaves_urls_without_passwords_alone() -> None:
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
