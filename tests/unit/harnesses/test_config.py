"""``[tool.fuzzorch]`` parsing: strict, with errors that name the key and the value."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.config import TargetConfig, parse_pyproject
from harnesses.errors import ConfigError
from harnesses.model import HarnessOptions


def test_no_pyproject_or_no_table_means_defaults() -> None:
    assert parse_pyproject(None) == TargetConfig()
    assert parse_pyproject(b"[project]\nname = 'x'\n") == TargetConfig()


def test_a_full_table_is_parsed() -> None:
    config = parse_pyproject(
        b"""
[tool.fuzzorch]
install = ["pip install -e ."]
exclude = ["docs/**"]
[tool.fuzzorch.defaults]
timeout = 2.5
max_len = 100
[[tool.fuzzorch.harness]]
path = "./fuzz/fuzz_x.py"
max_len = 10
seeds = "fuzz/seeds"
"""
    )
    assert config.present
    assert config.install == ("pip install -e .",)
    assert config.exclude == ("docs/**",)
    assert not config.discover  # harnesses listed: discovery is off unless asked for
    (harness,) = config.harnesses
    assert harness.name == "fuzz/fuzz_x.py"
    assert harness.options == HarnessOptions(max_len=10, timeout=2.5, seeds="fuzz/seeds")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.fuzzorch]\ninstal = []", "unknown key 'instal'"),
        ("[tool.fuzzorch]\ninstall = 'pip install .'", "install = 'pip install .'"),
        ("[tool.fuzzorch]\ndiscover = 'yes'", "discover = 'yes'"),
        ("[tool.fuzzorch.defaults]\ntimeout = -1", "timeout = -1"),
        ("[tool.fuzzorch.defaults]\ntimeout = nan", "timeout = nan"),
        ("[tool.fuzzorch.defaults]\nmax_len = true", "max_len = True"),
        ("[tool.fuzzorch.defaults]\nfoo = 1", "unknown key 'foo'"),
        ("[[tool.fuzzorch.harness]]\nmax_len = 1", "exactly one of path"),
        ("[[tool.fuzzorch.harness]]\npath = 'a.py'\ntest = 't.py::f'", "exactly one of path"),
        ("[[tool.fuzzorch.harness]]\npath = '../x.py'", "path = '../x.py'"),
        ("[[tool.fuzzorch.harness]]\npath = '/etc/x.py'", "path = '/etc/x.py'"),
        ("[[tool.fuzzorch.harness]]\npath = 'fuzz/x.txt'", "path = 'fuzz/x.txt'"),
        ("[[tool.fuzzorch.harness]]\ntest = 'tests/t.py'", "test = 'tests/t.py'"),
        ("[[tool.fuzzorch.harness]]\ntest = 't.py::not valid'", "test = 't.py::not valid'"),
        ("[[tool.fuzzorch.harness]]\npath = 'a.py'\nenabled = 0", "enabled = 0"),
        (
            "[[tool.fuzzorch.harness]]\npath = 'a.py'\n[[tool.fuzzorch.harness]]\npath = 'a.py'",
            "'a.py' twice",
        ),
        ("[tool]\nfuzzorch = 3", "must be a table"),
        ("[tool.fuzzorch\n", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_key_and_value(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_pyproject(toml.encode())
    assert message in str(error.value)


def test_non_utf8_pyproject_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_pyproject(b"[tool.fuzzorch]\n# \xff\n")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_either_parse_or_raise_config_error(data: bytes) -> None:
    # The project fuzzes its own parsers: any input ends in a value or a ConfigError.
    with contextlib.suppress(ConfigError):
        parse_pyproject(b"[tool.fuzzorch]\n" + data)


TOML_VALUES = st.recursive(
    st.none().map(lambda _: '""')
    | st.integers(-5, 10**6).map(str)
    | st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "inf"))
    | st.booleans().map(lambda b: str(b).lower())
    | st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    max_leaves=5,
)
KEYS = st.sampled_from(
    [
        "install",
        "discover",
        "exclude",
        "path",
        "test",
        "max_len",
        "timeout",
        "rss_limit_mb",
        "dictionary",
        "seeds",
        "enabled",
        "bogus",
    ]
)


@settings(max_examples=300)
@given(st.lists(st.tuples(KEYS, TOML_VALUES), max_size=6, unique_by=lambda kv: kv[0]))
def test_structured_garbage_in_a_harness_entry_is_a_config_error_or_valid(
    pairs: list[tuple[str, str]],
) -> None:
    body = "\n".join(f"{k} = {v}" for k, v in pairs)
    try:
        config = parse_pyproject(f"[[tool.fuzzorch.harness]]\n{body}\n".encode())
    except ConfigError:
        return
    (harness,) = config.harnesses
    assert harness.path.endswith(".py")
    assert not harness.path.startswith("/")
    assert ".." not in harness.path.split("/")
