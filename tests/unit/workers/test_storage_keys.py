"""Key and prefix rules shared by every object store (``workers.storage.base``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.errors import InvalidKeyError, StorageError
from workers.storage.base import (
    MAX_COMPONENT_BYTES,
    MAX_KEY_BYTES,
    validate_key,
    validate_limit,
    validate_max_bytes,
    validate_prefix,
)

VALID_KEYS = [
    "a",
    "corpus/my-repo/0123456789abcdef/da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "logs/campaign-1/job_2.txt",
    "reports/c1/index.html",
    "k=v+w@x,y",
    "a.",
    "a..b",
    "x" * MAX_COMPONENT_BYTES,
    "/".join(["y" * 200] * 5),  # 1004 bytes
]

# (key, a fragment of the rule the message must name)
INVALID_KEYS = [
    ("", "empty"),
    ("../x", "'..'"),
    ("a/../b", "'..'"),
    ("/abs", "relative"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("a/./b", "'.'"),
    (".", "'.'"),
    (".hidden", "starts with '.'"),
    ("a/.tmp/b", "starts with '.'"),
    ("x\\y", "'\\\\'"),
    ("a\x00b", "'\\x00'"),
    ("a\nb", "'\\n'"),
    ("sp ace", "' '"),
    ("caf\u00e9", "'\u00e9'"),
    ("a:b", "':'"),
    ("x" * 2000, f"longer than {MAX_KEY_BYTES} bytes"),
    ("x" * (MAX_COMPONENT_BYTES + 1), f"component longer than {MAX_COMPONENT_BYTES}"),
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(("key", "rule"), INVALID_KEYS)
def test_invalid_keys_are_refused_with_the_key_and_the_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        validate_key(key)
    message = str(info.value)
    assert repr(key) in message
    assert rule in message


def test_invalid_key_error_is_a_storage_error_and_a_value_error() -> None:
    with pytest.raises(StorageError):
        validate_key("../x")
    with pytest.raises(ValueError, match="Invalid object key"):
        validate_key("../x")


@pytest.mark.parametrize("value", [None, 1, b"a/b", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidKeyError, match="must be a str"):
        validate_key(value)


def test_exactly_max_bytes_is_allowed_and_one_more_is_not() -> None:
    key = "/".join(["z" * 200] * 4) + "/" + "z" * (MAX_KEY_BYTES - 4 * 201)
    assert len(key) == MAX_KEY_BYTES
    assert validate_key(key) == key
    with pytest.raises(InvalidKeyError, match="longer than"):
        validate_key(key + "z")


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "a/b/", "corpus/repo/"])
def test_prefixes_may_be_empty_or_end_with_a_slash(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix", ["/", "/a", "a//", "../", "a/../", ".hidden/", "a/./", "a\\b", "a\nb"]
)
def test_invalid_prefixes_are_refused_with_the_prefix(prefix: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        validate_prefix(prefix)
    assert repr(prefix) in str(info.value)
    assert "prefix" in str(info.value)


def test_a_trailing_slash_is_only_for_prefixes() -> None:
    with pytest.raises(InvalidKeyError):
        validate_key("a/b/")


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "10", None])
def test_bad_page_limits_are_refused(limit: object) -> None:
    with pytest.raises(ValueError, match=repr(limit).replace("(", r"\(")):
        validate_limit(limit)


@pytest.mark.parametrize("max_bytes", [-1, 1.0, False, "1"])
def test_bad_max_bytes_are_refused(max_bytes: object) -> None:
    with pytest.raises(ValueError, match="Invalid max_bytes"):
        validate_max_bytes(max_bytes)


COMPONENT = st.text(alphabet="abcXYZ019._-=+@,", min_size=1, max_size=12).filter(
    lambda part: not part.startswith(".")
)


@given(st.lists(COMPONENT, min_size=1, max_size=6))
def test_keys_built_from_allowed_components_are_valid(parts: list[str]) -> None:
    key = "/".join(parts)
    assert validate_key(key) == key
    assert validate_prefix(key + "/") == key + "/"


@given(st.text(max_size=40))
def test_any_accepted_key_is_a_safe_relative_path(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKeyError:
        return
    parts = key.split("/")
    assert all(parts), key
    assert not any(part.startswith(".") for part in parts), key
    assert key.isascii(), key
    assert key.isprintable(), key
    assert "\\" not in key
