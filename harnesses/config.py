"""``[tool.fuzzorch]`` in a target's ``pyproject.toml``: parsed strictly, never executed.

```toml
[tool.fuzzorch]
install = ["pip install -e ."]      # how a worker builds the environment
discover = true                     # default: true unless harnesses are listed
exclude = ["benchmarks/**"]         # paths discovery never looks at
[tool.fuzzorch.defaults]            # options for every harness
timeout = 5
[[tool.fuzzorch.harness]]
path = "fuzz/fuzz_parser.py"        # an atheris script
max_len = 4096
[[tool.fuzzorch.harness]]
test = "tests/test_props.py::test_roundtrip"
enabled = false
```
Every unknown key and every wrong type is an error that names the key and the value.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harnesses.errors import ConfigError
from harnesses.model import HarnessOptions
from harnesses.paths import validate_repo_path

MAX_INSTALL_COMMANDS = 20
MAX_COMMAND_LENGTH = 4096

_TOP_KEYS = {"install", "discover", "exclude", "defaults", "harness"}
_OPTION_KEYS = {"max_len", "timeout", "rss_limit_mb", "dictionary", "seeds"}
_HARNESS_KEYS = {"path", "test", "enabled"} | _OPTION_KEYS


@dataclass(frozen=True)
class ConfiguredHarness:
    """One ``[[tool.fuzzorch.harness]]`` entry."""

    name: str
    path: str
    is_test: bool
    options: HarnessOptions = field(default_factory=HarnessOptions)
    enabled: bool = True


@dataclass(frozen=True)
class TargetConfig:
    """A target repository's fuzzorch configuration (all defaults when it has none)."""

    present: bool = False
    install: tuple[str, ...] | None = None
    discover: bool = True
    exclude: tuple[str, ...] = ()
    defaults: HarnessOptions = field(default_factory=HarnessOptions)
    harnesses: tuple[ConfiguredHarness, ...] = ()


def parse_pyproject(data: bytes | None) -> TargetConfig:
    """The ``[tool.fuzzorch]`` table of a pyproject.toml's bytes; defaults when absent."""
    if data is None:
        return TargetConfig()
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"pyproject.toml is not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pyproject.toml is not valid TOML: {exc}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict) or "fuzzorch" not in tool:
        return TargetConfig()
    return parse_table(tool["fuzzorch"])


def parse_table(table: Any) -> TargetConfig:
    """Validate a ``[tool.fuzzorch]`` table."""
    where = "[tool.fuzzorch]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, not {table!r}")
    _reject_unknown(table, _TOP_KEYS, where)
    install = None
    if "install" in table:
        install = tuple(_string_list(table["install"], f"{where} install"))
        if len(install) > MAX_INSTALL_COMMANDS:
            raise ConfigError(f"{where} install has {len(install)} commands; at most 20")
        for command in install:
            if not command.strip() or len(command) > MAX_COMMAND_LENGTH or "\x00" in command:
                raise ConfigError(f"{where} install command {command!r} is empty or too long")
    exclude = tuple(_string_list(table.get("exclude", []), f"{where} exclude"))
    defaults = _options(table.get("defaults", {}), f"{where}.defaults", _OPTION_KEYS)
    raw_harnesses = table.get("harness", [])
    if not isinstance(raw_harnesses, list):
        raise ConfigError(f"{where} harness must be an array of tables, not {raw_harnesses!r}")
    entries = tuple(
        _harness(entry, f"[[tool.fuzzorch.harness]] #{i + 1}", defaults)
        for i, entry in enumerate(raw_harnesses)
    )
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"[[tool.fuzzorch.harness]] lists {duplicates[0]!r} twice")
    discover = table.get("discover", not entries)
    if not isinstance(discover, bool):
        raise ConfigError(f"{where} discover = {discover!r}: expected true or false")
    return TargetConfig(
        present=True,
        install=install,
        discover=discover,
        exclude=exclude,
        defaults=defaults,
        harnesses=entries,
    )


def _harness(entry: Any, where: str, defaults: HarnessOptions) -> ConfiguredHarness:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table, not {entry!r}")
    _reject_unknown(entry, _HARNESS_KEYS, where)
    if ("path" in entry) == ("test" in entry):
        raise ConfigError(f"{where} needs exactly one of path (atheris) or test (Hypothesis)")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled = {enabled!r}: expected true or false")
    options = _options({k: v for k, v in entry.items() if k in _OPTION_KEYS}, where, _OPTION_KEYS)
    merged = HarnessOptions(**{**defaults.to_json(), **options.to_json()})
    if "path" in entry:
        path = _path(entry["path"], f"{where} path")
        if not path.endswith(".py"):
            raise ConfigError(f"{where} path = {path!r}: an atheris harness is a .py file")
        return ConfiguredHarness(path, path, is_test=False, options=merged, enabled=enabled)
    test = entry["test"]
    if not isinstance(test, str) or test.count("::") not in (1, 2):
        raise ConfigError(
            f"{where} test = {test!r}: expected 'path.py::test_name' or 'path.py::Class::test'"
        )
    path, *parts = test.split("::")
    path = _path(path, f"{where} test")
    if not path.endswith(".py") or not all(p.isidentifier() for p in parts):
        raise ConfigError(f"{where} test = {test!r}: expected 'path.py::[Class::]function'")
    return ConfiguredHarness(test, path, is_test=True, options=merged, enabled=enabled)


def _options(raw: Any, where: str, allowed: set[str]) -> HarnessOptions:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, not {raw!r}")
    _reject_unknown(raw, allowed, where)
    values: dict[str, Any] = {}
    for key in ("max_len", "rss_limit_mb"):
        if key in raw:
            values[key] = _positive_int(raw[key], f"{where} {key}")
    if "timeout" in raw:
        value = raw["timeout"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigError(f"{where} timeout = {value!r}: expected a positive number of seconds")
        values["timeout"] = float(value)
    for key in ("dictionary", "seeds"):
        if key in raw:
            values[key] = _path(raw[key], f"{where} {key}")
    return HarnessOptions(**values)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value > 2**31:
        raise ConfigError(f"{where} = {value!r}: expected a positive whole number")
    return value


def _path(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} = {value!r}: expected a path inside the repository")
    try:
        return validate_repo_path(value)
    except ValueError as exc:
        raise ConfigError(f"{where} = {value!r}: {exc}") from None


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} = {value!r}: expected an array of strings")
    return list(value)


def _reject_unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{where} has unknown key {key!r} = {table[key]!r}; "
            f"expected one of {', '.join(sorted(allowed))}"
        )
