"""Links into a forge's web UI: every layout, and nothing unsafe ever comes out."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.reports.links import SourceLinks, source_links

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("source", "forge", "commit", "line", "tree"),
    [
        (
            "https://github.com/org/repo.git",
            None,
            "https://github.com/org/repo/commit/{sha}",
            "https://github.com/org/repo/blob/{sha}/src/app.py#L42",
            "https://github.com/org/repo/tree/{sha}",
        ),
        (
            "https://gitlab.com/group/sub/repo.git",
            None,
            "https://gitlab.com/group/sub/repo/-/commit/{sha}",
            "https://gitlab.com/group/sub/repo/-/blob/{sha}/src/app.py#L42",
            "https://gitlab.com/group/sub/repo/-/tree/{sha}",
        ),
        (
            "https://bitbucket.org/team/repo",
            None,
            "https://bitbucket.org/team/repo/commits/{sha}",
            "https://bitbucket.org/team/repo/src/{sha}/src/app.py#lines-42",
            "https://bitbucket.org/team/repo/src/{sha}",
        ),
        (
            "https://gitea.example.com/org/repo.git",
            None,
            "https://gitea.example.com/org/repo/commit/{sha}",
            "https://gitea.example.com/org/repo/src/commit/{sha}/src/app.py#L42",
            "https://gitea.example.com/org/repo/src/commit/{sha}",
        ),
        (
            "https://codeberg.org/org/repo",
            None,
            "https://codeberg.org/org/repo/commit/{sha}",
            "https://codeberg.org/org/repo/src/commit/{sha}/src/app.py#L42",
            "https://codeberg.org/org/repo/src/commit/{sha}",
        ),
        (
            "https://git.example.com/org/repo.git",
            "forgejo",
            "https://git.example.com/org/repo/commit/{sha}",
            "https://git.example.com/org/repo/src/commit/{sha}/src/app.py#L42",
            "https://git.example.com/org/repo/src/commit/{sha}",
        ),
        (
            "https://ghe.example.com/org/repo.git",
            "github",
            "https://ghe.example.com/org/repo/commit/{sha}",
            "https://ghe.example.com/org/repo/blob/{sha}/src/app.py#L42",
            "https://ghe.example.com/org/repo/tree/{sha}",
        ),
        (
            "https://code.example.com:8443/a/b/c.git",
            "gitlab",
            "https://code.example.com:8443/a/b/c/-/commit/{sha}",
            "https://code.example.com:8443/a/b/c/-/blob/{sha}/src/app.py#L42",
            "https://code.example.com:8443/a/b/c/-/tree/{sha}",
        ),
    ],
)
def test_every_forge_layout(
    source: str, forge: str | None, commit: str, line: str, tree: str
) -> None:
    links = source_links(source, forge=forge)
    assert links.commit(SHA) == commit.format(sha=SHA)
    assert links.line(SHA, "src/app.py", 42) == line.format(sha=SHA)
    assert links.tree(SHA) == tree.format(sha=SHA)


@pytest.mark.parametrize(
    ("source", "repo_url"),
    [
        ("git@github.com:org/repo.git", "https://github.com/org/repo"),
        ("github.com:org/repo", "https://github.com/org/repo"),
        ("ssh://git@github.com/org/repo.git", "https://github.com/org/repo"),
        ("ssh://git@github.com/org/repo.git/", "https://github.com/org/repo"),
        # An ssh port is not the web UI's port.
        (
            "ssh://git@gitlab.example.com:2222/group/sub/repo.git",
            "https://gitlab.example.com/group/sub/repo",
        ),
        (
            "git@gitlab.example.com:group/sub/deeper/repo.git",
            "https://gitlab.example.com/group/sub/deeper/repo",
        ),
        ("git://github.com/org/repo.git", "https://github.com/org/repo"),
        ("HTTPS://GitHub.COM/org/repo", "https://github.com/org/repo"),
        ("https://github.com:443/org/repo", "https://github.com/org/repo"),
        ("http://gitlab.internal:80/g/r", "http://gitlab.internal/g/r"),
        ("http://gitlab.internal/group/repo.git", "http://gitlab.internal/group/repo"),
    ],
)
def test_ssh_scp_and_url_forms_link_to_https(source: str, repo_url: str) -> None:
    links = source_links(source)
    assert links.repo_url == repo_url
    commit = links.commit(SHA)
    assert commit is not None
    assert commit.startswith(repo_url + "/")
    assert commit.endswith(f"/commit/{SHA}")


def test_nested_gitlab_groups_over_ssh() -> None:
    links = source_links("git@gitlab.example.com:group/sub/deeper/repo.git")
    base = "https://gitlab.example.com/group/sub/deeper/repo"
    assert links.commit(SHA) == f"{base}/-/commit/{SHA}"
    assert links.line(SHA, "pkg/mod.py", 5) == f"{base}/-/blob/{SHA}/pkg/mod.py#L5"


def test_only_an_http_source_gets_http_links() -> None:
    assert source_links("http://gitlab.internal/g/r").commit(SHA) == (
        f"http://gitlab.internal/g/r/-/commit/{SHA}"
    )
    for source in ("ssh://git@gitlab.internal/g/r", "git@gitlab.internal:g/r"):
        assert source_links(source).commit(SHA) == f"https://gitlab.internal/g/r/-/commit/{SHA}"


@pytest.mark.parametrize(
    "source",
    [
        "https://user:ghp_secret@github.com/org/repo.git",
        "https://ghp_secret@github.com/org/repo.git",
        "https://x-access-token:ghp_secret@github.com/org/repo.git",
        "ssh://ghp_secret@github.com/org/repo.git",
        "ghp_secret@github.com:org/repo.git",
    ],
)
def test_credentials_never_reach_a_link(source: str) -> None:
    links = source_links(source)
    urls = [links.commit(SHA), links.line(SHA, "a.py", 1), links.tree(SHA), links.repo_url]
    assert all(url is not None and url.startswith("https://github.com/org/repo") for url in urls)
    assert "ghp_secret" not in repr(links)
    assert not any("@" in url for url in urls if url)


@pytest.mark.parametrize(
    "source",
    [
        "/srv/git/repo",
        "/srv/git/repo.git",
        "./repo",
        "../repo",
        "~/repo",
        "file:///srv/git/repo",
        "file://localhost/srv/git/repo",
        "C:\\repos\\x",
        "",
        "https://github.com",
        "https://github.com/",
        "https://github.com/org",
        "https://github.com/a/b/c",  # GitHub has exactly owner/repo
        "https://github.com/org/../repo",
        "https://github.com/org/%2e%2e/repo",
        "https://github.com/org/re%00po",
        "https://github.com/org/repo?x=1",
        "https://github.com/org/repo#frag",
        "https://github.com/org/re po",
        "https://github.com:99999/org/repo",
        "https://exa_mple.com/org/repo",
        "https://github.com/org/\u202erepo",
        "javascript://github.com/org/repo",
        "ext::sh -c touch% /tmp/x",
        "ftp://github.com/org/repo",
        "https://unknown.example.com/org/repo",  # no forge known for the host
    ],
)
def test_sources_without_links(source: str) -> None:
    links = source_links(source)
    assert links == SourceLinks()
    assert links.commit(SHA) is None
    assert links.line(SHA, "a.py", 1) is None
    assert links.tree(SHA) is None


@pytest.mark.parametrize(
    "sha",
    [
        "",
        "0123456",  # abbreviated
        SHA + "0",
        SHA[:-1] + "g",
        SHA + "\n",
        " " + SHA[1:],
        "javascript:alert(1)",
        "../../" + SHA[6:],
        "0" * 64,  # sha-256 object ids are not supported yet
        12345,
        None,
    ],
)
def test_hostile_shas_give_no_link(sha: object) -> None:
    links = source_links("https://github.com/org/repo")
    assert links.commit(sha) is None  # type: ignore[arg-type]
    assert links.line(sha, "a.py", 1) is None  # type: ignore[arg-type]
    assert links.tree(sha) is None  # type: ignore[arg-type]


def test_uppercase_shas_are_normalized() -> None:
    links = source_links("https://github.com/org/repo")
    assert links.commit(SHA.upper()) == f"https://github.com/org/repo/commit/{SHA}"


@pytest.mark.parametrize(
    ("path", "encoded"),
    [
        ("src/app.py", "src/app.py"),
        ("dir with spaces/my file.py", "dir%20with%20spaces/my%20file.py"),
        ("a/<script>.py", "a/%3Cscript%3E.py"),
        ("a/\"quote'.py", "a/%22quote%27.py"),
        ("été/ünï.py", "%C3%A9t%C3%A9/%C3%BCn%C3%AF.py"),
        ("a/b#c?d.py", "a/b%23c%3Fd.py"),
        ("100%.py", "100%25.py"),
        ("a/%2F.py", "a/%252F.py"),
        ("javascript:alert(1)", "javascript%3Aalert%281%29"),
        ("...py/.hidden", "...py/.hidden"),
    ],
)
def test_paths_are_percent_encoded_per_segment(path: str, encoded: str) -> None:
    links = source_links("https://github.com/org/repo")
    assert links.line(SHA, path, 7) == f"https://github.com/org/repo/blob/{SHA}/{encoded}#L7"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "../x",
        "a/../../x",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "/etc/passwd",
        "//evil.example.com/x",
        "%2e%2e/x",
        "a/%2E%2e/x",
        "%2e/x",
        "a\\..\\b",
        "a\x00b",
        "a\nb",
        "a\tb",
        "a\u202eb.py",  # right-to-left override: spoofs the shown name
        "a\u200bb.py",
        "x" * 5000,
        None,
        b"a.py",
    ],
)
def test_hostile_paths_give_no_link(path: object) -> None:
    assert source_links("https://github.com/org/repo").line(SHA, path, 1) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("line", [0, -1, True, 1.5, "3"])
def test_bad_line_numbers_give_no_link(line: object) -> None:
    assert source_links("https://github.com/org/repo").line(SHA, "a.py", line) is None  # type: ignore[arg-type]


def test_no_line_drops_the_fragment() -> None:
    for source in (
        "https://github.com/o/r",
        "https://bitbucket.org/o/r",
        "https://codeberg.org/o/r",
    ):
        url = source_links(source).line(SHA, "a.py", None)
        assert url is not None
        assert "#" not in url
        assert url.endswith(f"{SHA}/a.py")


TEMPLATE = (
    "https://code.example.com/{repo}/commit/{sha}"
    "|https://code.example.com/{repo}/file/{sha}/{path}#{line}"
    "|{repo_url}/browse?at={sha}"
)


def test_template_links() -> None:
    links = source_links("git@code.example.com:team/sub/repo.git", template=TEMPLATE)
    assert links.repo_url == "https://code.example.com/team/sub/repo"
    assert links.commit(SHA) == f"https://code.example.com/team/sub/repo/commit/{SHA}"
    assert links.line(SHA, "a b.py", 3) == (
        f"https://code.example.com/team/sub/repo/file/{SHA}/a%20b.py#3"
    )
    assert (
        links.line(SHA, "a.py", None) == f"https://code.example.com/team/sub/repo/file/{SHA}/a.py"
    )
    assert links.tree(SHA) == f"https://code.example.com/team/sub/repo/browse?at={SHA}"
    assert links.line(SHA, "../a.py", 3) is None
    assert links.commit("nope") is None


def test_template_with_only_commit_links() -> None:
    links = source_links("https://code.example.com/o/r", template="{repo_url}/c/{sha}")
    assert links.commit(SHA) == f"https://code.example.com/o/r/c/{SHA}"
    assert links.line(SHA, "a.py", 1) is None
    assert links.tree(SHA) is None


def test_template_uses_host_and_beats_the_forge() -> None:
    links = source_links(
        "https://github.com/o/r", template="https://mirror.example.com/{host}/{repo}/{sha}"
    )
    assert links.commit(SHA) == f"https://mirror.example.com/github.com/o/r/{SHA}"


def test_template_line_outside_the_fragment_needs_a_line() -> None:
    links = source_links(
        "https://code.example.com/o/r",
        template="{repo_url}/c/{sha}|{repo_url}/l/{line}/{sha}/{path}",
    )
    assert links.line(SHA, "a.py", 9) == f"https://code.example.com/o/r/l/9/{SHA}/a.py"
    assert links.line(SHA, "a.py", None) is None


def test_template_does_not_link_local_sources() -> None:
    assert source_links("/srv/repo", template=TEMPLATE) == SourceLinks()


def test_http_template_needs_an_http_source() -> None:
    template = "http://code.internal/{repo}/{sha}"
    links = source_links("http://code.internal/o/r", template=template)
    assert links.commit(SHA) == f"http://code.internal/o/r/{SHA}"
    with pytest.raises(ValueError, match=re.escape(repr(template))):
        source_links("https://code.internal/o/r", template=template)


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("", "non-empty"),
        ("javascript:alert('{sha}')", "whitespace|quotes"),
        ("javascript:alert({sha})", "must start with"),
        ("data:text/html,{sha}", "must start with"),
        ("ftp://code.example.com/{sha}", "must start with"),
        ("//code.example.com/{sha}", "must start with"),
        ("{repo}/{sha}", "must start with"),
        ("https:///{sha}", "no host"),
        ("https://{host}/{sha}", "host literally"),
        ("https://code.example.com/{sha}|https://code.example.com/{sha}#{line}", r"\{path\}"),
        ("https://code.example.com/commit", r"\{sha\}"),
        ("https://code.example.com/{sha}/{sha.__class__}", "unknown placeholder"),
        ("https://code.example.com/{0}/{sha}", "unknown placeholder"),
        ("https://code.example.com/{sha", "unbalanced"),
        ("https://code.example.com/{sha}}", "unbalanced"),
        ("https://code.example.com/ {sha}", "whitespace"),
        ("https://code.example.com/<b>{sha}", "whitespace"),
        ("https://code.example.com/\x00{sha}", "control"),
        ("a|b|c|d", "three"),
        ("|{repo_url}/{sha}/{path}", "commit pattern"),
    ],
)
def test_bad_templates_are_refused_by_name(template: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        source_links("https://code.example.com/o/r", template=template)
    assert repr(template) in str(info.value)


@pytest.mark.parametrize(
    "source",
    [
        "https://exa_mple.com/org/repo",
        "https://-bad.example.com/org/repo",
        "https://bad-.example.com/org/repo",
        "https://exam%70le.com/org/repo",
        "https://ex\u0430mple.com/org/repo",  # Cyrillic 'a': a homograph
        "https://example.com:0x50/org/repo",
        "https://[::1/org/repo",
        "git@:org/repo",
    ],
)
def test_invalid_hosts_give_no_links_even_with_a_forge(source: str) -> None:
    assert source_links(source, forge="gitlab") == SourceLinks()


def test_ipv6_hosts_with_a_forge() -> None:
    links = source_links("https://[2001:db8::1]:8443/o/r.git", forge="gitea")
    assert links.commit(SHA) == f"https://[2001:db8::1]:8443/o/r/commit/{SHA}"


def test_unknown_forge_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'sourcehut'"):
        source_links("https://git.sr.ht/~u/r", forge="sourcehut")


_SOURCES = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, user, host, path: f"{scheme}{user}{host}/{path}",
        st.sampled_from(["https://", "http://", "ssh://", "git://", ""]),
        st.sampled_from(["", "git@", "u:p@", "@"]),
        st.sampled_from(["github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "h:1"]),
        st.text(max_size=40),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    source=_SOURCES,
    sha=st.one_of(st.just(SHA), st.text(max_size=45)),
    path=st.text(max_size=40),
    line=st.one_of(st.none(), st.integers()),
    forge=st.sampled_from([None, "github", "gitlab", "bitbucket", "gitea"]),
)
def test_every_link_is_a_plain_web_url(
    source: str, sha: str, path: str, line: int | None, forge: str | None
) -> None:
    links = source_links(source, forge=forge)
    for url in (links.commit(sha), links.line(sha, path, line), links.tree(sha)):
        if url is None:
            continue
        parts = urlsplit(url)
        assert parts.scheme == "https" or (parts.scheme == "http" and source.startswith("http:"))
        assert parts.hostname
        assert parts.username is None
        assert parts.password is None
        assert url.isascii()
        assert url.isprintable()
        assert not any(ch in url for ch in " \"'<>\\`")
        segments = parts.path.split("/")
        assert ".." not in segments
        assert "." not in segments
