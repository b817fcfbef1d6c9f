"""docker/: everything about the images and the Compose file that can be checked without a
Docker engine (there is none on the machines fuzzorch is developed and tested on).

Nothing here builds an image or starts a container. It checks that the files agree with
the code: the Compose file has the services, ports, volumes, healthchecks and dependencies
the fleet needs; every setting ``orchestrator/settings.py`` reads is set, and every
service's environment, with Compose's defaults filled in, is accepted by
``Settings.from_env`` and points at the right service with matching credentials; each
Dockerfile parses, copies only what exists and starts a ``fuzzorch`` command the CLI has.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.exceptions import TyperException

from orchestrator.cli.main import app
from orchestrator.settings import PREFIX, Settings
from workers.uidpool import LOCK_DIR

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
README = DOCKER / "README.md"
SETTINGS_SOURCE = ROOT / "orchestrator" / "settings.py"
DOCKERFILES = {"server": DOCKER / "server.Dockerfile", "worker": DOCKER / "worker.Dockerfile"}
BASE_IMAGE = "python:3.11-slim-bookworm"

SERVICES = {"postgres", "redis", "minio", "migrate", "server", "worker"}
# Ports as Compose publishes them with every ${VAR:-default} at its default.
PORTS = {
    "server": ["8000:8000"],
    "redis": ["127.0.0.1:6379:6379"],
    "minio": ["127.0.0.1:9000:9000", "127.0.0.1:9001:9001"],
}
VOLUMES = {
    "postgres": {"postgres-data": "/var/lib/postgresql/data"},
    "redis": {"redis-data": "/data"},
    "minio": {"minio-data": "/data"},
    "server": {"server-home": "/var/lib/fuzzorch"},
    "worker": {"worker-home": "/var/lib/fuzzorch", "harness-uids": str(LOCK_DIR)},
}
# What each service's healthcheck command must contain.
HEALTHCHECKS = {
    "postgres": "pg_isready",
    "redis": "redis-cli ping",
    "minio": "mc ready local",
    "server": "http://127.0.0.1:8000/health",
}
DEPENDS_ON = {
    "migrate": {"postgres": "service_healthy"},
    "server": {
        "migrate": "service_completed_successfully",
        "redis": "service_healthy",
        "minio": "service_healthy",
    },
    "worker": {"server": "service_healthy"},
}
# The services that run a fuzzorch image, and which one.
FUZZORCH_SERVICES = {"migrate": "server", "server": "server", "worker": "worker"}
# Settings only a CLI client has: set on no service (documented in the file's comments).
CLIENT_ONLY = {f"{PREFIX}SERVER_URL", f"{PREFIX}TOKEN"}


# --- the settings the code reads ------------------------------------------------------------


def settings_read_by_source(source: str) -> set[str]:
    """``FUZZORCH_*`` names in settings.py: ``env.get("NAME", …)`` calls, whole literal names,
    and ``f"{PREFIX}NAME…"`` in messages."""
    names: set[str] = set()
    literal = re.compile(rf"^{PREFIX}[A-Z0-9_]+$")
    leading = re.compile(r"^[A-Z][A-Z0-9_]*")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(PREFIX + node.args[0].value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if literal.match(node.value):
                names.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts = node.values
            for before, after in itertools.pairwise(parts):
                if (
                    isinstance(before, ast.FormattedValue)
                    and isinstance(before.value, ast.Name)
                    and before.value.id == "PREFIX"
                    and isinstance(after, ast.Constant)
                    and (match := leading.match(str(after.value)))
                ):
                    names.add(PREFIX + match.group(0))
    return names


class RecordingEnviron(dict[str, str]):
    """An empty environment that remembers every name it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def settings_read_at_runtime(tmp_path: Path) -> set[str]:
    environ = RecordingEnviron()
    Settings.from_env(environ, cwd=tmp_path)
    return {name for name in environ.asked if name.startswith(PREFIX)}


@pytest.fixture(scope="module")
def settings_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from_source = settings_read_by_source(SETTINGS_SOURCE.read_text(encoding="utf-8"))
    at_runtime = settings_read_at_runtime(tmp_path_factory.mktemp("settings"))
    # Two independent extractions: each must look complete on its own, and the source scan
    # must see everything the code asks for (else it needs to learn a new way of reading).
    assert len(from_source) >= 12, sorted(from_source)
    assert len(at_runtime) >= 12, sorted(at_runtime)
    assert at_runtime <= from_source, sorted(at_runtime - from_source)
    return from_source | at_runtime


def test_the_source_scan_sees_each_way_of_naming_a_setting() -> None:
    source = (
        'PREFIX = "FUZZORCH_"\n'
        'a = env.get("HOME", str, default=None)\n'
        'b = environ.get("FUZZORCH_LITERAL")\n'
        'c = f"{PREFIX}HEARTBEAT_SECONDS={x!r} must be"\n'
        'd = other.get("NOT_A_SETTING")\n'
    )
    assert settings_read_by_source(source) == {
        "FUZZORCH_HOME",
        "FUZZORCH_LITERAL",
        "FUZZORCH_HEARTBEAT_SECONDS",
    }


def test_the_settings_known_today_are_found(settings_names: set[str]) -> None:
    for name in ("HOME", "DATABASE_URL", "BROKER_URL", "BROKER_NAMESPACE", "STORAGE_URL"):
        assert PREFIX + name in settings_names
    for name in ("SERVER_URL", "TOKEN", "ALLOW_LOCAL_REPOS", "LOG_LEVEL", "LEASE_SECONDS"):
        assert PREFIX + name in settings_names


# --- Compose interpolation --------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$(?:\{(?P<body>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\$)")
_WITH_DEFAULT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?-)(?P<default>[^${}]*)$")


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` as ``docker compose`` would substitute it; every variable must have a
    default (``${VAR:-default}``), so the file works without a .env file."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        body = match.group("body")
        if body is None:
            raise ValueError(f"{match.group(0)!r} in {value!r} has no default: use ${{VAR:-x}}")
        parsed = _WITH_DEFAULT.match(body)
        if parsed is None:
            raise ValueError(f"${{{body}}} in {value!r} has no default: use ${{VAR:-x}}")
        name, op, default = parsed.group("name", "op", "default")
        current = environ.get(name)
        if current is None or (op == ":-" and current == ""):
            return default
        return current

    return _INTERPOLATION.sub(substitute, value)


def strings_in(tree: Any) -> Iterator[str]:
    """Every string value of a parsed YAML tree."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from strings_in(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from strings_in(item)
    elif isinstance(tree, str):
        yield tree


def interpolated(tree: Any) -> Any:
    """The parsed Compose file with every string value interpolated (keys are not)."""
    if isinstance(tree, dict):
        return {key: interpolated(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [interpolated(item) for item in tree]
    if isinstance(tree, str):
        return interpolate(tree)
    return tree


def test_interpolation_follows_compose() -> None:
    assert interpolate("a${X:-1}b") == "a1b"
    assert interpolate("${X:-1}", {"X": "2"}) == "2"
    assert interpolate("${X:-1}", {"X": ""}) == "1"
    assert interpolate("${X-1}", {"X": ""}) == ""
    assert interpolate("cost $$5") == "cost $5"
    for bad in ("${X}", "$X", "${X:?required}"):
        with pytest.raises(ValueError, match="no default"):
            interpolate(bad)


# --- the Compose file -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    """The Compose file, parsed (YAML merge keys resolved) and interpolated at defaults."""
    raw = yaml.safe_load(compose_text)
    assert isinstance(raw, dict)
    return dict(interpolated(raw))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (Compose allows a mapping or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def test_top_level_keys_are_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose  # obsolete in the Compose spec; docker compose warns
    assert {"services", "volumes"} <= set(compose)
    assert all(key in {"name", "services", "volumes"} or key.startswith("x-") for key in compose)


def test_exactly_the_fleet_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].split(":")[0] == "minio/minio"
    assert services["minio"]["command"][:2] == ["server", "/data"]


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    published = {name: [str(p) for p in s["ports"]] for name, s in services.items() if "ports" in s}
    assert published == PORTS


def test_volumes_are_declared_used_and_mounted_where_expected(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    mounted: dict[str, dict[str, str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert isinstance(volume, str), f"{name}: use the short volume syntax"
            source, target = volume.split(":")[:2]
            assert not source.startswith((".", "/")), f"{name}: bind mount {volume!r}"
            mounted.setdefault(name, {})[source] = target
    assert mounted == VOLUMES
    declared = set(compose["volumes"])
    used = {source for volumes in mounted.values() for source in volumes}
    assert declared == used


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    checked = {name for name, service in services.items() if "healthcheck" in service}
    assert checked == set(HEALTHCHECKS)
    for name, needle in HEALTHCHECKS.items():
        test = services[name]["healthcheck"]["test"]
        assert isinstance(test, list)
        assert test[0] == "CMD", f"{name}: exec form, no shell needed"
        assert needle in " ".join(test[1:]), f"{name}: {test}"


def test_redis_healthcheck_can_log_in(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert environment(redis)["REDISCLI_AUTH"] == password


def test_depends_on_names_existing_services_with_the_expected_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    found: dict[str, dict[str, str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on")
        if depends is None:
            continue
        assert isinstance(depends, dict), f"{name}: give every dependency a condition"
        for other, spec in depends.items():
            assert other in services, f"{name} depends on unknown service {other!r}"
            found.setdefault(name, {})[other] = spec["condition"]
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[other], f"{other} has no healthcheck"
    assert found == DEPENDS_ON
    # No cycles: every service can be started after the ones it depends on.
    started: set[str] = set()
    while len(started) < len(services):
        ready = {n for n in services if n not in started and set(found.get(n, {})) <= started}
        assert ready, f"dependency cycle among {sorted(set(services) - started)}"
        started |= ready


def test_worker_fleet_settings(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "ports" not in worker
    assert worker["cap_add"] == ["SYS_ADMIN"]
    assert set(worker["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}
    assert not worker.get("privileged", False)
    assert worker["init"] is True
    for name in ("server", "migrate", "postgres", "redis", "minio"):
        service = services[name]
        assert not {"cap_add", "security_opt", "privileged"} & set(service), name


def test_fuzzorch_images_are_built_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, image in FUZZORCH_SERVICES.items():
        build = services[name]["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILES[image]
        assert services[name]["image"] == f"fuzzorch/{image}:local"


def test_every_setting_the_code_reads_is_in_the_compose_file(
    settings_names: set[str], compose_text: str, services: dict[str, dict[str, Any]]
) -> None:
    named = set(re.findall(rf"\b{PREFIX}[A-Z0-9_]+\b", compose_text))
    assert settings_names <= named, f"not in compose.yaml: {sorted(settings_names - named)}"
    assert named <= settings_names, f"not settings fuzzorch reads: {sorted(named - settings_names)}"
    assigned = {key for s in services.values() for key in environment(s)}
    # Every setting but the client-only ones is given a value on some service.
    assert settings_names - CLIENT_ONLY <= assigned
    assert not CLIENT_ONLY & assigned, "FUZZORCH_SERVER_URL/TOKEN are for CLI clients only"


def test_workers_hold_no_database_credentials(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["worker"])
    assert f"{PREFIX}DATABASE_URL" not in env
    assert not any("postgres" in value for value in env.values())


def service_settings(services: dict[str, dict[str, Any]], name: str, tmp: Path) -> Settings:
    return Settings.from_env(environment(services[name]), cwd=tmp)


def test_every_service_environment_is_valid_and_wired_to_the_right_services(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    server = service_settings(services, "server", tmp_path)
    worker = service_settings(services, "worker", tmp_path)
    migrate = service_settings(services, "migrate", tmp_path)

    postgres_env = environment(services["postgres"])
    expected_db = (
        f"postgresql+psycopg://{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres_env['POSTGRES_DB']}"
    )
    assert server.database_url == expected_db
    assert migrate.database_url == server.database_url

    redis_command = services["redis"]["command"]
    password = redis_command[redis_command.index("--requirepass") + 1]
    assert server.broker_url == f"redis://:{password}@redis:6379/0"

    minio_env = environment(services["minio"])
    s3 = server.storage.s3
    assert s3 is not None
    assert (s3.endpoint, s3.bucket, s3.secure) == ("minio:9000", "fuzzorch", False)
    assert (s3.access_key, s3.secret_key) == (
        minio_env["MINIO_ROOT_USER"],
        minio_env["MINIO_ROOT_PASSWORD"],
    )
    assert len(minio_env["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter ones

    # The two sides of the queue must agree on everything they share.
    assert worker.broker_url == server.broker_url
    assert worker.broker_namespace == server.broker_namespace == "fuzzorch"
    assert worker.storage.url == server.storage.url
    assert worker.timings == server.timings
    for settings in (server, worker, migrate):
        assert settings.home == Path("/var/lib/fuzzorch")
        assert settings.server_url is None
        assert settings.token is None
    assert server.allow_local_repos is False


def test_the_fuzzorch_home_is_on_the_volume(services: dict[str, dict[str, Any]]) -> None:
    for name in ("server", "worker"):
        home = environment(services[name])[f"{PREFIX}HOME"]
        assert home in VOLUMES[name].values(), f"{name}: {PREFIX}HOME is not on a volume"


# --- Dockerfiles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None in shell form."""
        if not self.arguments.startswith("["):
            return None
        value = json.loads(self.arguments)
        assert isinstance(value, list), self
        assert all(isinstance(v, str) for v in value), self
        return value


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped (also inside a continued instruction,
    as Docker does), backslash continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if re.match(r"#\s*escape\s*=", line) and not instructions and not pending:
            raise ValueError("the escape directive is not supported by this parser")
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, arguments = joined.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise ValueError(f"line {start}: {keyword!r} is not an instruction")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    if pending:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")
    return instructions


def test_the_dockerfile_parser() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim-bookworm\n"
        "\n"
        "RUN apt-get update \\\n"
        "    # a comment inside the continuation\n"
        "    && apt-get install -y git \\\n"
        "    && true\n"
        'CMD ["server", "--port", "8000"]\n'
        "copy --chown=a:b x y /dest/\n"
    )
    parsed = parse_dockerfile(text)
    assert [i.keyword for i in parsed] == ["FROM", "RUN", "CMD", "COPY"]
    assert parsed[1].arguments == "apt-get update && apt-get install -y git && true"
    assert parsed[1].line == 4
    assert parsed[2].exec_form() == ["server", "--port", "8000"]
    assert parsed[3].exec_form() is None
    with pytest.raises(ValueError, match="ends inside"):
        parse_dockerfile("FROM x\nRUN a \\\n")
    with pytest.raises(ValueError, match="not an instruction"):
        parse_dockerfile("FROM x\n&& oops\n")


def dockerfile(image: str) -> list[Instruction]:
    return parse_dockerfile(DOCKERFILES[image].read_text(encoding="utf-8"))


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def copy_sources(instruction: Instruction) -> list[str]:
    """The source paths of a COPY or ADD (flags skipped; the last word is the destination)."""
    words = instruction.exec_form() or shlex.split(instruction.arguments)
    flags = [w for w in words if w.startswith("--")]
    assert not [f for f in flags if f.startswith("--from")], "no multi-stage copies expected"
    paths = [w for w in words if not w.startswith("--")]
    assert len(paths) >= 2, instruction
    return paths[:-1]


def apt_packages(instructions: list[Instruction]) -> set[str]:
    packages: set[str] = set()
    for run in (i for i in instructions if i.keyword == "RUN"):
        for command in re.split(r"&&|;|\|\|", run.arguments):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_image_is_debian_python_311(image: str) -> None:
    assert only(dockerfile(image), "FROM").arguments == BASE_IMAGE


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_copied_path_exists_and_the_package_is_complete(image: str) -> None:
    instructions = dockerfile(image)
    copies = [i for i in instructions if i.keyword in {"COPY", "ADD"}]
    assert copies
    sources: set[str] = set()
    for instruction in copies:
        for source in copy_sources(instruction):
            assert not re.search(r"[*?\[]|://", source), f"{image}: copy exact paths: {source}"
            assert (ROOT / source).exists(), f"{image}: COPY source {source!r} does not exist"
            sources.add(source.rstrip("/"))
    project = pyproject()
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", project["project"]["readme"], *packages}
    assert sources == needed, f"{image}: copies {sorted(sources)}, the wheel needs {sorted(needed)}"
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert "pip install" in runs


def test_system_packages() -> None:
    assert "git" in apt_packages(dockerfile("server"))
    # bwrap comes from bubblewrap; prlimit, setpriv and unshare from util-linux.
    assert {"git", "bubblewrap", "util-linux"} <= apt_packages(dockerfile("worker"))


def user_of(instructions: list[Instruction]) -> str:
    users = [i.arguments for i in instructions if i.keyword == "USER"]
    return users[-1] if users else "root"


def test_the_worker_runs_as_root_and_the_server_does_not() -> None:
    # The sandbox needs root to create namespaces and switch harnesses to their own uids.
    assert user_of(dockerfile("worker")) in {"root", "0"}
    assert user_of(dockerfile("server")) not in {"root", "0"}


def test_the_worker_image_prepares_the_uid_lock_directory() -> None:
    runs = [i.arguments for i in dockerfile("worker") if i.keyword == "RUN"]
    assert any(f"-m 0700 {LOCK_DIR}" in run for run in runs), "root-only, as uidpool requires"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_image_home_matches_compose(image: str, services: dict[str, dict[str, Any]]) -> None:
    env = " ".join(i.arguments for i in dockerfile(image) if i.keyword == "ENV")
    home = environment(services[image])[f"{PREFIX}HOME"]
    assert f"{PREFIX}HOME={home}" in env


def test_the_server_healthcheck_asks_health_on_the_served_port() -> None:
    instructions = dockerfile("server")
    check = only(instructions, "HEALTHCHECK").arguments
    command = only(instructions, "CMD").exec_form()
    assert command is not None
    port = command[command.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/health" in check
    assert "python" in check  # with urllib: there is no curl in a slim image
    assert "urllib" in check
    assert only(instructions, "EXPOSE").arguments == port


# --- the commands the images and the Compose file start ---------------------------------------


def check_fuzzorch_command(argv: list[str]) -> None:
    """Fail unless ``fuzzorch ARGV`` names a verb the CLI has, with options it accepts."""
    # Recent typer releases carry their own copy of click: look at groups by their
    # ``commands``, not by isinstance against the click package.
    command: Any = typer.main.get_command(app)
    path = ["fuzzorch"]
    args = list(argv)
    while isinstance(getattr(command, "commands", None), dict):
        assert args, f"{' '.join(path)} needs a subcommand"
        verb = args.pop(0)
        sub = command.commands.get(verb)
        if sub is None:
            pytest.fail(
                f"'{' '.join(path)} {verb}' is not a command of this CLI; "
                f"it has {sorted(command.commands)}"
            )
        path.append(verb)
        command = sub
    try:
        command.make_context(" ".join(path), args)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"'{' '.join([*path, *args])}': {message}")


def test_the_command_checker_refuses_unknown_verbs_and_options() -> None:
    check_fuzzorch_command(["db", "upgrade"])
    with pytest.raises(pytest.fail.Exception, match="not a command"):
        check_fuzzorch_command(["no-such-verb"])
    with pytest.raises(pytest.fail.Exception, match="No such option"):
        check_fuzzorch_command(["db", "upgrade", "--no-such-option"])


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_image_starts_a_fuzzorch_command(image: str) -> None:
    instructions = dockerfile(image)
    entrypoint = only(instructions, "ENTRYPOINT").exec_form()
    command = only(instructions, "CMD").exec_form()
    assert entrypoint == ["fuzzorch"], "exec form, so signals reach fuzzorch"
    assert command is not None
    assert command[0] == image
    check_fuzzorch_command(command)


@pytest.mark.parametrize("name", sorted(FUZZORCH_SERVICES))
def test_the_service_starts_a_fuzzorch_command(
    name: str, services: dict[str, dict[str, Any]]
) -> None:
    command = services[name]["command"]
    assert isinstance(command, list), f"{name}: exec form"
    assert "entrypoint" not in services[name]  # the image's: fuzzorch
    check_fuzzorch_command(command)


def test_the_server_listens_where_it_is_published_and_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    command = services["server"]["command"]
    host, port = command[command.index("--host") + 1], command[command.index("--port") + 1]
    assert host == "0.0.0.0"  # noqa: S104 - all of the container's interfaces, on purpose
    assert PORTS["server"] == [f"{port}:{port}"]
    assert f":{port}/health" in " ".join(services["server"]["healthcheck"]["test"])


# --- docker/README.md -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def readme_commands(text: str) -> Iterator[list[str]]:
    """The arguments of every ``fuzzorch …`` command in the README's shell blocks (and of a
    ``docker run … fuzzorch/IMAGE:TAG …``, whose entrypoint is fuzzorch)."""
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for index, word in enumerate(words):
                is_image = re.fullmatch(r"fuzzorch/\w+(:\S+)?", word) and "run" in words[:index]
                if word == "fuzzorch" or is_image:
                    rest = words[index + 1 :]
                    cut = next((i for i, w in enumerate(rest) if w in {"|", "&&", ";"}), None)
                    yield rest[:cut]
                    break


def test_the_readme_commands_exist(readme: str) -> None:
    commands = list(readme_commands(readme))
    verbs = {tuple(c[:2]) for c in commands}
    assert ("token", "create") in verbs
    assert ("worker", "--threads") in verbs
    assert len(commands) >= 5, commands
    for argv in commands:
        check_fuzzorch_command(argv)


def test_the_readme_documents_every_setting_and_how_to_run(
    readme: str, settings_names: set[str]
) -> None:
    lines = (line.removeprefix(">").strip() for line in readme.splitlines())
    prose = " ".join(" ".join(lines).replace("**", "").split())
    missing = sorted(name for name in settings_names if f"`{name}`" not in readme)
    assert not missing, f"docker/README.md's settings table lacks {missing}"
    for needle in (
        "docker compose -f docker/compose.yaml up -d",
        "--scale worker=",
        "exec server fuzzorch token create --role admin",
        "never been built or started",
        "tests/unit/test_docker.py",
    ):
        assert needle in prose
    # Every variable the Compose file interpolates is explained (comments are not
    # interpolated, so only the parsed values count).
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    compose_variables = {
        name
        for value in strings_in(raw)
        for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", value)
    }
    assert compose_variables
    undocumented = sorted(v for v in compose_variables if v not in readme)
    assert not undocumented, f"docker/README.md does not explain {undocumented}"
