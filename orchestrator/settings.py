"""Settings: the one place in fuzzorch that reads the environment.

``Settings.from_env(environ)`` is called once per entry point; everything else receives
plain values from it. Every timing the queue and scheduler depend on is a setting, so tests
run the real mechanisms in seconds instead of minutes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from orchestrator.errors import SettingsError
from orchestrator.secretbox import parse_key

T = TypeVar("T")

PREFIX = "FUZZORCH_"
# Host variables an environment build needs to reach the package index (certificates,
# proxies, index URLs). Only builds see them, never harness runs.
BUILD_VARIABLES = frozenset(
    {
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
BUILD_PREFIXES = ("PIP_", "UV_")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if _port_or_none(url) is not None else ""
    return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()


def _port_or_none(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


@dataclass(frozen=True)
class S3Location:
    """Where objects live in an S3 API: parsed from ``s3://KEY:SECRET@HOST:PORT/BUCKET``."""

    endpoint: str
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    bucket: str
    secure: bool
    region: str | None


@dataclass(frozen=True)
class StorageLocation:
    """The object store: a directory (``file://``) or an S3 bucket (``s3://``)."""

    url: str = dataclasses.field(repr=False)
    directory: Path | None = None
    s3: S3Location | None = None

    def __repr__(self) -> str:
        return f"StorageLocation({mask_url(self.url)!r})"


@dataclass(frozen=True)
class Timings:
    """Every timing of the queue and scheduler, in seconds unless the name says otherwise."""

    slice_seconds: float = 120.0
    heartbeat_seconds: float = 10.0
    lease_seconds: float = 60.0
    reconcile_seconds: float = 15.0
    max_attempts: int = 3
    retry_backoff_seconds: float = 1.0
    retry_max_seconds: float = 60.0

    @property
    def first_lease_seconds(self) -> float:
        """A new attempt's lease: it covers queueing and start-up until the worker's first
        heartbeat; after that, heartbeats extend it by ``lease_seconds`` at a time."""
        return max(self.lease_seconds, self.heartbeat_seconds * 3)


@dataclass(frozen=True)
class Settings:
    """Everything fuzzorch reads from the environment, validated once."""

    home: Path
    database_url: str = dataclasses.field(repr=False)
    broker_url: str = dataclasses.field(repr=False)
    broker_namespace: str
    storage: StorageLocation
    server_url: str | None
    token: str | None = dataclasses.field(repr=False)
    allow_local_repos: bool
    timings: Timings
    log_level: str
    fleet_slots: int = 0
    triage_runs: int = 10
    secret_key: bytes | None = dataclasses.field(default=None, repr=False)
    cookie_secure: bool = False
    build_env: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def embedded(self) -> bool:
        """True when no server is configured: the CLI works on the state under ``home``."""
        return self.server_url is None

    @property
    def database_url_masked(self) -> str:
        """The database URL, safe to show."""
        return mask_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
        """Build settings from an environment mapping; raise SettingsError naming the variable."""
        env = _Env(environ)
        base = cwd if cwd is not None else Path.cwd()
        home = env.get("HOME", str, default=None)
        home_path = (base / (home or ".fuzzorch")).resolve()
        database_url = env.get(
            "DATABASE_URL",
            _database_url,
            default=f"sqlite:///{home_path / 'fuzzorch.db'}",
        )
        broker_url = env.get("BROKER_URL", _broker_url, default="memory://")
        broker_namespace = env.get("BROKER_NAMESPACE", _namespace, default="fuzzorch")
        storage = env.get(
            "STORAGE_URL",
            lambda raw: _storage_location(raw, base),
            default=_storage_location(f"file://{home_path / 'objects'}", base),
        )
        server_url = env.get("SERVER_URL", _http_url, default=None)
        defaults = Timings()
        timings = Timings(
            slice_seconds=env.get("SLICE_SECONDS", _positive(float), defaults.slice_seconds),
            heartbeat_seconds=env.get(
                "HEARTBEAT_SECONDS", _positive(float), defaults.heartbeat_seconds
            ),
            lease_seconds=env.get("LEASE_SECONDS", _positive(float), defaults.lease_seconds),
            reconcile_seconds=env.get(
                "RECONCILE_SECONDS", _positive(float), defaults.reconcile_seconds
            ),
            max_attempts=env.get("MAX_ATTEMPTS", _positive(int), defaults.max_attempts),
            retry_backoff_seconds=env.get(
                "RETRY_BACKOFF_SECONDS", _positive(float), defaults.retry_backoff_seconds
            ),
            retry_max_seconds=env.get(
                "RETRY_MAX_SECONDS", _positive(float), defaults.retry_max_seconds
            ),
        )
        if timings.heartbeat_seconds >= timings.lease_seconds:
            raise SettingsError(
                f"{PREFIX}HEARTBEAT_SECONDS={timings.heartbeat_seconds!r} must be shorter "
                f"than {PREFIX}LEASE_SECONDS={timings.lease_seconds!r}: otherwise every "
                "running job looks dead before its first heartbeat"
            )
        return cls(
            home=home_path,
            database_url=database_url,
            broker_url=broker_url,
            broker_namespace=broker_namespace,
            storage=storage,
            server_url=server_url,
            token=env.get("TOKEN", _token, default=None, secret=True),
            allow_local_repos=env.get("ALLOW_LOCAL_REPOS", _bool, default=False),
            timings=timings,
            log_level=env.get("LOG_LEVEL", _log_level, default="INFO"),
            fleet_slots=env.get("FLEET_SLOTS", _slots, default=0),
            triage_runs=env.get("TRIAGE_RUNS", _runs, default=10),
            secret_key=env.get("SECRET_KEY", _key_or_none, default=None, secret=True),
            cookie_secure=env.get("COOKIE_SECURE", _bool, default=False),
            build_env={
                name: value
                for name, value in environ.items()
                if name in BUILD_VARIABLES or name.startswith(BUILD_PREFIXES)
            },
        )


class _Env:
    """Typed access to ``FUZZORCH_*`` variables with errors that name variable and value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(
        self,
        name: str,
        cast: Callable[[str], T],
        default: T,
        *,
        secret: bool = False,
    ) -> T:
        key = PREFIX + name
        raw = self._environ.get(key)
        if raw is None:
            return default
        try:
            return cast(raw.strip())
        except (ValueError, TypeError) as exc:
            shown = "***" if secret else repr(mask_url(raw) if "://" in raw else raw)
            raise SettingsError(f"{key}={shown} is invalid: {exc}") from None


def _positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    def cast(raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ValueError(f"expected {noun} of seconds or a count") from None
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError("must be a finite number greater than 0")
        return value

    return cast


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _slots(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 100_000:
        raise ValueError("expected a whole number of worker slots, 0 (off) to 100000")
    return int(raw)


def _key_or_none(raw: str) -> bytes | None:
    # Compose files pass "" for "not set".
    return parse_key(raw) if raw else None


def _runs(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValueError("expected a whole number of reproductions, 1 to 100")
    return int(raw)


def _namespace(raw: str) -> str:
    if not raw or len(raw) > 64 or not all(c.isalnum() or c in "-_.:" for c in raw):
        raise ValueError("1-64 letters, digits, '-', '_', '.' or ':'")
    return raw


def _token(raw: str) -> str:
    if not raw or any(not c.isprintable() or c.isspace() for c in raw):
        raise ValueError("a token is one word of printable characters")
    return raw


def _database_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme.startswith("sqlite"):
        return raw
    if scheme in {"postgresql", "postgresql+psycopg", "postgres"}:
        # One driver for PostgreSQL: psycopg 3. "postgres://" is what many hosts hand out.
        rest = raw.split("://", 1)[1]
        return f"postgresql+psycopg://{rest}"
    raise ValueError("expected a sqlite:/// or postgresql:// URL")


def _broker_url(raw: str) -> str:
    parts = urlsplit(raw)
    if raw == "memory://":
        return raw
    if parts.scheme in {"redis", "rediss"}:
        if not parts.hostname:
            raise ValueError("a redis:// URL needs a host")
        _check_port(raw)
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"the Redis database number {db!r} is not a whole number")
        return raw
    raise ValueError("expected memory:// or redis://HOST:PORT/DB")


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    _check_port(raw)
    return raw.rstrip("/")


def _check_port(raw: str) -> None:
    try:
        urlsplit(raw).port  # noqa: B018 - the property validates the port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None


def _storage_location(raw: str, base: Path) -> StorageLocation:
    parts = urlsplit(raw)
    if parts.scheme == "file":
        # file:///abs/path, or file://relative/path relative to the working directory.
        path = Path(unquote(parts.netloc + parts.path))
        if not str(path):
            raise ValueError("a file:// URL needs a directory path")
        return StorageLocation(url=raw, directory=(base / path).resolve())
    if parts.scheme == "s3":
        return StorageLocation(url=raw, s3=_s3_location(raw))
    raise ValueError("expected file:///PATH or s3://ACCESS:SECRET@HOST:PORT/BUCKET")


def _s3_location(raw: str) -> S3Location:
    parts = urlsplit(raw)
    if not parts.hostname:
        raise ValueError("an s3:// URL needs a host")
    _check_port(raw)
    if parts.username is None or parts.password is None:
        raise ValueError("an s3:// URL needs ACCESS:SECRET@ before the host")
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise ValueError("an s3:// URL needs exactly one path component: the bucket")
    if not (3 <= len(bucket) <= 63) or not all(
        c.islower() or c.isdigit() or c in ".-" for c in bucket
    ):
        raise ValueError(
            f"bucket {bucket!r} must be 3-63 characters of lowercase letters, digits, '.' and '-'"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"secure", "region"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; expected secure or region")
    secure = _bool(query.get("secure", ["false"])[-1])
    region = query.get("region", [None])[-1] or None
    port = f":{parts.port}" if parts.port is not None else ""
    return S3Location(
        endpoint=f"{parts.hostname}{port}",
        access_key=unquote(parts.username),
        secret_key=unquote(parts.password),
        bucket=bucket,
        secure=secure,
        region=region,
    )
