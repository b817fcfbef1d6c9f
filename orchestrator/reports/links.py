"""Links from a report to a commit, a tree or a ``path:line`` in the repository's web UI.

Sources, commit ids and paths all reach a report from hostile places (a registration, a
webhook, a crash's traceback), and a link is an ``href`` a reader will click. So a link is
either built from validated parts — an ``https://`` base (``http://`` only when the source
itself is plain http), a 40-hex commit id, a relative path whose every segment is
percent-encoded — or not built at all (``None``). A report shows plain text instead.

Which URL layout to use comes from the host (github.com, bitbucket.org, hosts with
"gitlab", "gitea" or "codeberg" in their name), from an explicit ``forge``, or from a
``template`` (see ``source_links``); otherwise, and for local sources, there are no links.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

__all__ = ["FORGES", "SourceLinks", "source_links"]

# The built-in layouts, written in the template language that ``source_links`` documents.
FORGES: dict[str, str] = {
    "github": "{repo_url}/commit/{sha}|{repo_url}/blob/{sha}/{path}#L{line}|{repo_url}/tree/{sha}",
    "gitlab": (
        "{repo_url}/-/commit/{sha}|{repo_url}/-/blob/{sha}/{path}#L{line}|{repo_url}/-/tree/{sha}"
    ),
    "bitbucket": (
        "{repo_url}/commits/{sha}|{repo_url}/src/{sha}/{path}#lines-{line}|{repo_url}/src/{sha}"
    ),
    "gitea": (
        "{repo_url}/commit/{sha}|{repo_url}/src/commit/{sha}/{path}#L{line}"
        "|{repo_url}/src/commit/{sha}"
    ),
}
FORGES["forgejo"] = FORGES["gitea"]

# How many path segments each forge's repository path has (GitLab nests groups).
_SEGMENTS: dict[str, tuple[int, int]] = {
    "github": (2, 2),
    "gitlab": (2, 64),
    "bitbucket": (2, 2),
    "gitea": (2, 2),
    "forgejo": (2, 2),
}

_SHA_RE = re.compile(r"[0-9a-fA-F]{40}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# git reads `host:path` as scp-like ssh only when no `/` comes before the first `:`.
_SCP_RE = re.compile(r"(?:[^@/:]+@)?(?P<host>\[[^\]/]*\]|[^@/:\[\]]+):(?P<path>.*)")
_HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_IPV6_RE = re.compile(r"\[[0-9a-f:.]+\]")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS = frozenset({"repo_url", "host", "repo", "sha", "path", "line"})
# Which placeholders each part of a template must use, so no link points at the wrong revision.
_REQUIRED = (("sha",), ("sha", "path"), ("sha",))
_WEB_SCHEMES = {"https": "https", "http": "http", "ssh": "https", "git": "https"}
_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_PATH_CHARS = 4096


@dataclass(frozen=True)
class SourceLinks:
    """URLs into one repository's web UI; every method returns ``None`` when it cannot link."""

    repo_url: str | None = None
    host: str = ""
    repo: str = ""
    # The three parts of a validated template: commit, line and tree ("" when absent).
    patterns: tuple[str, str, str] = ("", "", "")

    def commit(self, sha: str) -> str | None:
        """The page of commit ``sha``."""
        return self._render(self.patterns[0], sha=sha)

    def line(self, sha: str, path: str, line: int | None) -> str | None:
        """The file ``path`` at ``sha``, scrolled to ``line`` when it is given."""
        encoded = _encode_path(path)
        if encoded is None:
            return None
        pattern = self.patterns[1]
        if line is None:
            pattern = _without_line(pattern)
        elif isinstance(line, bool) or not isinstance(line, int) or line < 1:
            return None
        return self._render(pattern, sha=sha, path=encoded, line=str(line))

    def tree(self, sha: str) -> str | None:
        """The file browser at ``sha``."""
        return self._render(self.patterns[2], sha=sha)

    def _render(self, pattern: str, *, sha: str, **values: str) -> str | None:
        if self.repo_url is None or not pattern:
            return None
        if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
            return None
        values |= {"repo_url": self.repo_url, "host": self.host, "repo": self.repo}
        values["sha"] = sha.lower()
        # Every value is from a closed alphabet without braces, so one pass is enough.
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], pattern)


def source_links(
    source: str, *, template: str | None = None, forge: str | None = None
) -> SourceLinks:
    """The links for repository ``source``; raise ValueError for a bad template or forge.

    A template is up to three URL patterns separated by ``|``: commit, file line and tree,
    e.g. ``https://code.example.com/{repo}/commit/{sha}|https://code.example.com/{repo}/
    file/{sha}/{path}#{line}``. Placeholders: ``{repo_url}`` (``https://host/org/repo``),
    ``{host}``, ``{repo}`` (``org/repo``), ``{sha}``, ``{path}`` and ``{line}``; nothing else
    may appear in braces. Each pattern starts with ``https://``, ``http://`` (only for an
    http source) or ``{repo_url}``; the commit and tree patterns use ``{sha}``, the line
    pattern ``{sha}`` and ``{path}``. A missing or empty pattern means no such links. When
    no line is given, the line pattern's fragment (from its last ``#``) is dropped.

    Precedence: ``template``, then ``forge``, then what the host name says.
    """
    patterns = _parse_template(template) if template is not None else None
    if forge is not None and forge not in FORGES:
        raise ValueError(f"Unknown forge {forge!r}: expected one of {', '.join(sorted(FORGES))}")
    parsed = _parse_source(source)
    if parsed is None:
        return SourceLinks()
    scheme, host, segments = parsed
    if patterns is not None:
        if scheme != "http" and any(p.startswith("http://") for p in patterns):
            raise ValueError(
                f"Invalid link template {template!r}: http:// links need an http:// source"
            )
    else:
        kind = forge or _detect_forge(host)
        if kind is None:
            return SourceLinks()
        patterns = _split_template(FORGES[kind])
        low, high = _SEGMENTS[kind]
        if not low <= len(segments) <= high:
            return SourceLinks()
    repo = "/".join(quote(s, safe="") for s in segments)
    return SourceLinks(
        repo_url=f"{scheme}://{host}/{repo}", host=host, repo=repo, patterns=patterns
    )


def _detect_forge(host: str) -> str | None:
    name = host.partition(":")[0]  # (an IPv6 host matches no forge either way)
    if name == "github.com":
        return "github"
    if name == "bitbucket.org":
        return "bitbucket"
    if "gitlab" in name:
        return "gitlab"
    if "gitea" in name or "codeberg" in name:
        return "gitea"
    return None


def _parse_source(source: str) -> tuple[str, str, list[str]] | None:
    """``(web scheme, host[:port], repository path segments)``, or None when not linkable."""
    if not isinstance(source, str) or _has_control(source):
        return None
    # URLs never hold whitespace, and a backslash only means a Windows path.
    if any(c.isspace() or c == "\\" for c in source) or source.startswith(("/", ".", "~")):
        return None
    scheme_match = _SCHEME_RE.match(source)
    if scheme_match is not None:
        return _parse_url(source, scheme_match.group(1).lower())
    scp = _SCP_RE.fullmatch(source)
    if scp is None:
        return None
    host = scp.group("host").lower()
    segments = _repo_segments(scp.group("path"))
    if not _valid_host(host) or segments is None:
        return None
    return "https", host, segments


def _parse_url(source: str, scheme: str) -> tuple[str, str, list[str]] | None:
    if scheme not in _WEB_SCHEMES:
        return None  # file:// and anything unknown: no web UI to link to
    try:
        parts = urlsplit(source)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if host is None or parts.query or parts.fragment:
        return None
    # Credentials never reach a link: only the host name (and a web port) is kept. An ssh
    # or git port says nothing about where the web UI listens.
    host = f"[{host}]" if ":" in host else host
    if not _valid_host(host):
        return None
    if port is not None and scheme in ("https", "http") and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    segments = _repo_segments(parts.path)
    if segments is None:
        return None
    return _WEB_SCHEMES[scheme], host, segments


def _valid_host(host: str) -> bool:
    return bool(_HOSTNAME_RE.fullmatch(host) or _IPV6_RE.fullmatch(host))


def _repo_segments(path: str) -> list[str] | None:
    path = unquote(path).strip("/").removesuffix(".git")
    segments = path.split("/")
    if _has_control(path) or any(s in ("", ".", "..") for s in segments):
        return None
    return segments


def _encode_path(path: str) -> str | None:
    """``path`` percent-encoded segment by segment, or None if it could escape the tree."""
    if not isinstance(path, str) or not path or len(path) > _MAX_PATH_CHARS:
        return None
    if path.startswith("/") or _has_control(path) or "\\" in path:
        return None
    segments = path.split("/")
    # A decoded check as well: a server that decodes twice would read %2e%2e as '..'.
    if any(s in ("", ".", "..") or unquote(s) in (".", "..") for s in segments):
        return None
    return "/".join(quote(s, safe="") for s in segments)


def _without_line(pattern: str) -> str:
    """The line pattern for a link without a line: its fragment dropped, or "" if it can't be."""
    head, hash_, fragment = pattern.rpartition("#")
    if "{line}" not in pattern:
        return pattern
    if hash_ and "{line}" in fragment and "{line}" not in head:
        return head
    return ""


def _has_control(value: str) -> bool:
    # Cf covers bidi overrides and zero-width characters, which only serve to spoof a link.
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value)


def _split_template(template: str) -> tuple[str, str, str]:
    parts = template.split("|")
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def _parse_template(template: str) -> tuple[str, str, str]:
    """The template's three patterns; raise ValueError naming the template if it is unsafe."""

    def refuse(why: str) -> ValueError:
        return ValueError(f"Invalid link template {template!r}: {why}")

    if not isinstance(template, str) or not template:
        raise refuse("must be a non-empty string")
    if _has_control(template) or any(c.isspace() or c in "\\\"'<>`" for c in template):
        raise refuse("must not contain whitespace, control characters, quotes or '<>\\`'")
    if template.count("|") > 2:
        raise refuse("expected at most three patterns separated by '|': commit|line|tree")
    patterns = _split_template(template)
    if not patterns[0]:
        raise refuse("the commit pattern (before the first '|') must not be empty")
    for pattern, required in zip(patterns, _REQUIRED, strict=True):
        if pattern:
            _check_pattern(pattern, required, refuse)
    return patterns


def _check_pattern(
    pattern: str, required: tuple[str, ...], refuse: Callable[[str], ValueError]
) -> None:
    names = _PLACEHOLDER_RE.findall(pattern)
    unknown = sorted(set(names) - _PLACEHOLDERS)
    if unknown:
        raise refuse(f"unknown placeholder {{{unknown[0]}}} in {pattern!r}")
    if "{" in _PLACEHOLDER_RE.sub("", pattern) or "}" in _PLACEHOLDER_RE.sub("", pattern):
        raise refuse(f"unbalanced brace in {pattern!r}")
    missing = [name for name in required if name not in names]
    if missing:
        raise refuse(f"{pattern!r} must use {{{missing[0]}}}")
    if not pattern.startswith(("https://", "http://", "{repo_url}")):
        raise refuse(f"{pattern!r} must start with https://, http:// or {{repo_url}}")
    # The host of a literal URL must be literal too: a placeholder could not move it, but a
    # reader of the configuration should see where links go.
    sample = _PLACEHOLDER_RE.sub("x", pattern)
    if pattern.startswith("http") and not urlsplit(sample).hostname:
        raise refuse(f"{pattern!r} has no host")
    if pattern.startswith("http") and "{" in pattern.split("/", 3)[2]:
        raise refuse(f"{pattern!r} must name its host literally")
