"""Pure validation of refs, commit ids, sources and paths before anything reaches git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.errors import GitError, InvalidRefError, InvalidSourceError
from workers.gitrefs import (
    canonical_source,
    repo_name_from_source,
    validate_path,
    validate_ref,
    validate_rev,
    validate_sha,
)

SHA = "0123456789abcdef0123456789abcdef01234567"

GOOD_REFS = [
    "main",
    "HEAD",
    SHA,
    "release/1.2",
    "refs/heads/feature/x-y_z",
    "v1.0.0",
    "a.b",
    "@foo",
    "foo@bar",
    "déjà-vu",
    "x" * 255,
]

BAD_REFS = [
    ("", "must not be empty"),
    ("-x", "must not start with '-'"),
    ("--upload-pack=x", "must not start with '-'"),
    ("a..b", "must not contain '..'"),
    ("a@{1}", "must not contain '@{'"),
    ("@", "must not be '@'"),
    ("a b", "must not contain ' '"),
    ("a\tb", "control, invisible or whitespace"),
    ("a\x00b", "control, invisible or whitespace"),
    ("a\x7fb", "control, invisible or whitespace"),
    ("a\u202eb", "control, invisible or whitespace"),
    ("main~1", "must not contain '~'"),
    ("main^", "must not contain '^'"),
    ("a:b", "must not contain ':'"),
    ("a?", "must not contain '?'"),
    ("a*", "must not contain '*'"),
    ("a[b", "must not contain '['"),
    ("a\\b", "must not contain '\\\\'"),
    ("a.lock", "must not end with '.lock'"),
    ("a.lock/b", "must not end with '.lock'"),
    ("a.", "must not end with '.'"),
    ("a/", "must not start or end with '/'"),
    ("/a", "must not start or end with '/'"),
    ("a//b", "must not contain '//'"),
    (".a", "must not start with '.'"),
    ("a/.b", "must not start with '.'"),
    ("x" * 256, "at most 255 characters"),
]


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_validate_ref_accepts(ref: str) -> None:
    assert validate_ref(ref) == ref


@pytest.mark.parametrize(("ref", "fragment"), BAD_REFS)
def test_validate_ref_refuses_and_names_the_value(ref: str, fragment: str) -> None:
    with pytest.raises(InvalidRefError) as info:
        validate_ref(ref)
    message = str(info.value)
    assert message.startswith(f"Invalid ref {ref!r}: ")
    assert fragment in message


def test_validate_ref_message_example() -> None:
    with pytest.raises(InvalidRefError, match=r"^Invalid ref '-x': a ref must not start with '-'$"):
        validate_ref("-x")


def test_validate_ref_refuses_non_strings() -> None:
    with pytest.raises(InvalidRefError, match="must be a string"):
        validate_ref(b"main")  # type: ignore[arg-type]


@pytest.mark.parametrize("sha", [SHA, "f" * 40])
def test_validate_sha_accepts(sha: str) -> None:
    assert validate_sha(sha) == sha


@pytest.mark.parametrize("bad", ["", "abc", SHA.upper(), SHA + "0", SHA[:-1] + "g", "-" + SHA[1:]])
def test_validate_sha_refuses(bad: str) -> None:
    with pytest.raises(InvalidRefError, match=rf"^Invalid commit id {bad!r}: must be 40 lowercase"):
        validate_sha(bad)


def test_validate_rev_lowercases_shas_and_checks_refs() -> None:
    assert validate_rev(SHA.upper()) == SHA
    assert validate_rev("main") == "main"
    with pytest.raises(InvalidRefError, match="must not start with '-'"):
        validate_rev("-main")


GOOD_SOURCES = [
    ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
    ("HTTPS://GitHub.COM/Org/Repo.git/", "https://github.com/Org/Repo.git"),
    ("https://github.com:443/org/repo", "https://github.com/org/repo"),
    ("https://git.example.com:8443/org/repo//", "https://git.example.com:8443/org/repo"),
    ("https://[::1]:8443/x.git", "https://[::1]:8443/x.git"),
    ("ssh://git@GitHub.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
    ("ssh://git@github.com:22/org/repo.git", "ssh://git@github.com/org/repo.git"),
    ("ssh://github.com:2222/~user/repo.git/", "ssh://github.com:2222/~user/repo.git"),
    ("git@GitHub.com:org/repo.git", "git@github.com:org/repo.git"),
    ("github.com:org/repo.git/", "github.com:org/repo.git"),
]

BAD_SOURCES = [
    ("", "must not be empty"),
    ("--upload-pack=touch /tmp/x", "must not start with '-'"),
    ("-oProxyCommand=x", "must not start with '-'"),
    ("ext::sh -c touch% /tmp/pwned", "remote helper syntax 'ext::' is not allowed"),
    ("fd::17", "remote helper syntax 'fd::' is not allowed"),
    ("ssh://-oProxyCommand=touch%20/tmp/pwned/x", "must not start with '-'"),
    ("ssh://git@-oProxyCommand=x/repo", "must not start with '-'"),
    ("ssh://-oProxyCommand=x@host/repo", "is not a plain user name"),
    ("git@-oProxyCommand=x:repo", "must not start with '-'"),
    ("git@host:-repo", "must not start with '-'"),
    ("https://host/-repo", "must not start with '-'"),
    ("http://github.com/org/repo.git", "plain http:// is not allowed"),
    ("git://github.com/org/repo.git", "scheme 'git://' is not allowed"),
    ("ftp://host/repo", "scheme 'ftp://' is not allowed"),
    ("https://user:secret@github.com/org/repo.git", "credentials must not be part of a source"),
    ("https://token@github.com/org/repo.git", "credentials must not be part of a source"),
    ("ssh://git:secret@github.com/org/repo.git", "a password must not be part of a source"),
    ("ssh://@github.com/org/repo.git", "the user name before '@' is empty"),
    ("https://@github.com/org/repo.git", "the user name before '@' is empty"),
    ("https://github.com/org/repo.git\n", "control characters"),
    ("https://github.com/org/repo.git\x00", "control characters"),
    ("https://github.com/org/repo .git", "must not contain whitespace"),
    ("C:\\repo", "must not contain whitespace or backslashes"),
    ("https://github.com/org/repo.git?x=1", "query or fragment"),
    ("https://github.com/org/repo.git#frag", "query or fragment"),
    ("https://github.com", "has no repository path"),
    ("https://github.com/", "has no repository path"),
    ("https://gith%75b.com/x", "is not a valid host name"),
    ("https://host:99999/x", "is not a number in 1..65535"),
    ("https://[::1/x", "malformed URL"),
    ("file:///tmp", "file:// sources are not allowed (allow_local is off)"),
    ("/tmp", "local paths are not allowed (allow_local is off)"),
    ("./repo", "local paths are not allowed (allow_local is off)"),
]


@pytest.mark.parametrize(("source", "canonical"), GOOD_SOURCES)
def test_canonical_source_normalizes_urls(source: str, canonical: str) -> None:
    assert canonical_source(source, allow_local=False) == canonical
    assert canonical_source(canonical, allow_local=False) == canonical


@pytest.mark.parametrize(("source", "fragment"), BAD_SOURCES)
def test_canonical_source_refuses_and_names_the_value(source: str, fragment: str) -> None:
    with pytest.raises(InvalidSourceError) as info:
        canonical_source(source, allow_local=False)
    message = str(info.value)
    assert message.startswith(f"Invalid source {source!r}: ")
    assert fragment in message


@pytest.mark.parametrize(
    "source", ["ext::sh -c x", "--upload-pack=x", "http://h/x", "ssh://-o/x", "fd::3"]
)
def test_allow_local_does_not_open_other_doors(source: str) -> None:
    with pytest.raises(InvalidSourceError):
        canonical_source(source, allow_local=True)


def test_local_paths_are_resolved_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo.git"
    repo.mkdir()
    (tmp_path / "alias").symlink_to(repo)
    monkeypatch.chdir(tmp_path)
    expected = str(repo.resolve())
    assert canonical_source("repo.git", allow_local=True) == expected
    assert canonical_source("./alias/", allow_local=True) == expected
    assert canonical_source(f"file://{repo}", allow_local=True) == expected
    assert canonical_source("file://localhost" + str(tmp_path / "alias"), allow_local=True) == (
        expected
    )


def test_local_path_must_be_an_existing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidSourceError, match="is not an existing directory") as info:
        canonical_source(str(missing), allow_local=True)
    assert repr(str(missing)) in str(info.value)
    with pytest.raises(InvalidSourceError, match="is not an existing directory"):
        canonical_source(str(tmp_path / "file"), allow_local=True)
    with pytest.raises(InvalidSourceError, match=r"file:///absolute/path"):
        canonical_source(f"file://otherhost{tmp_path}", allow_local=True)


@pytest.mark.parametrize(
    ("canonical", "name"),
    [
        ("https://github.com/org/repo.git", "repo"),
        ("https://github.com/org/repo", "repo"),
        ("ssh://git@github.com/org/Repo.Name.git", "Repo.Name"),
        ("git@github.com:org/repo.git", "repo"),
        ("github.com:repo.git", "repo"),
        ("/srv/git/project", "project"),
    ],
)
def test_repo_name_from_source(canonical: str, name: str) -> None:
    assert repo_name_from_source(canonical) == name


def test_repo_name_needs_a_name() -> None:
    with pytest.raises(InvalidSourceError, match=r"'https://h/\.git': no repository name"):
        repo_name_from_source("https://h/.git")


@pytest.mark.parametrize(("path", "normalized"), [("a.py", "a.py"), ("pkg/a b.py", "pkg/a b.py")])
def test_validate_path_accepts(path: str, normalized: str) -> None:
    assert validate_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "must not be empty"),
        ("/etc/passwd", "relative to the repository root"),
        ("../x", "must not contain '..'"),
        ("a/../../x", "must not contain '..'"),
        ("a//b", "empty components"),
        ("./a", "'.'"),
        ("a\x00b", "must not contain NUL"),
    ],
)
def test_validate_path_refuses(path: str, fragment: str) -> None:
    with pytest.raises(GitError) as info:
        validate_path(path)
    assert str(info.value).startswith(f"Invalid path {path!r}: ")
    assert fragment in str(info.value)


# Weighted toward the characters the rules are about, so both sides of each rule are hit.
_REF_CHARS = st.sampled_from([*"ab/.-@{}~^:?*[\\ \t\x7f", ".lock", "..", "//", "@{", "HEAD"])
ref_candidates = st.lists(_REF_CHARS | st.characters(), min_size=1, max_size=12).map("".join)


def _git_accepts(ref: str) -> bool:
    result = subprocess.run(
        ["git", "check-ref-format", "--allow-onelevel", ref],
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"},
    )
    return result.returncode == 0


def _accepted(ref: str) -> bool:
    try:
        validate_ref(ref)
    except InvalidRefError:
        return False
    return True


@settings(max_examples=200, deadline=None, database=None)
@given(ref_candidates)
def test_every_accepted_ref_is_accepted_by_git(ref: str) -> None:
    if _accepted(ref):
        assert not ref.startswith("-")
        assert _git_accepts(ref), f"validate_ref accepted {ref!r} but git refuses it"


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(ref_candidates.filter(lambda r: r.isprintable() and "\x00" not in r))
def test_git_and_validate_ref_agree_on_printable_refs(ref: str) -> None:
    # The converse, within what we deliberately refuse more than git (a leading '-' and
    # invisible characters): we must not be stricter than needed.
    if not ref.startswith("-") and len(ref) <= 255:
        assert _accepted(ref) == _git_accepts(ref), ref
