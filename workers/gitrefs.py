"""Pure validation of everything user-derived that ``workers.git`` hands to ``git``.

Refs, commit ids, repository sources and in-tree paths come from users and webhooks and are
hostile until proven otherwise. Each check here is stricter than git's own, so a value that
passes can never be read by git as an option, a remote helper or a revision expression.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import SplitResult, unquote, urlsplit

from workers.errors import GitError, InvalidRefError, InvalidSourceError

__all__ = [
    "MAX_REF_LENGTH",
    "canonical_source",
    "is_local_source",
    "repo_name_from_source",
    "validate_path",
    "validate_ref",
    "validate_rev",
    "validate_sha",
]

MAX_REF_LENGTH = 255

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_ANY_CASE_SHA_RE = re.compile(r"[0-9a-fA-F]{40}")
# Characters git check-ref-format refuses anywhere in a ref, besides control characters.
_REF_FORBIDDEN = frozenset(" ~^:?*[\\")
# `<transport>::<address>` makes git run a remote helper (`ext::` runs a shell command).
_HELPER_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_IPV6_RE = re.compile(r"\[[0-9a-f:.]+\]")
_USER_RE = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
# git reads `host:path` as scp-like ssh only when no `/` comes before the first `:`.
_SCP_RE = re.compile(r"(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]/]*\]|[^@/:\[\]]+):(?P<path>.*)")
_DEFAULT_PORTS = {"https": 443, "ssh": 22}


# git check-ref-format's rules (plus ours: no leading '-', bounded length), in the order in
# which a message should name the problem.
_REF_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda r: not r, "a ref must not be empty"),
    (lambda r: len(r) > MAX_REF_LENGTH, f"a ref must be at most {MAX_REF_LENGTH} characters"),
    (lambda r: r.startswith("-"), "a ref must not start with '-'"),
    # Stricter than git, which allows any byte >= 0x80: invisible and bidi-control
    # characters in a branch name only serve to spoof another one in reports.
    (
        lambda r: not r.isprintable(),
        "a ref must not contain control, invisible or whitespace characters",
    ),
    (lambda r: ".." in r, "a ref must not contain '..'"),
    (lambda r: "@{" in r, "a ref must not contain '@{'"),
    (lambda r: r == "@", "a ref must not be '@'"),
    (lambda r: r.startswith("/") or r.endswith("/"), "a ref must not start or end with '/'"),
    (lambda r: "//" in r, "a ref must not contain '//'"),
    (lambda r: r.endswith("."), "a ref must not end with '.'"),
)


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value)


def validate_sha(s: str) -> str:
    """Return ``s`` if it is a full commit id: 40 lowercase hex digits."""
    if not isinstance(s, str):
        raise InvalidRefError(f"Invalid commit id {s!r}: must be a string")
    if not _SHA_RE.fullmatch(s):
        raise InvalidRefError(f"Invalid commit id {s!r}: must be 40 lowercase hex digits")
    return s


def validate_ref(ref: str) -> str:
    """Return ``ref`` if it is a safe branch, tag or ref name (``git check-ref-format`` rules)."""
    if not isinstance(ref, str):
        raise InvalidRefError(f"Invalid ref {ref!r}: must be a string")
    reason = _ref_problem(ref)
    if reason is not None:
        raise InvalidRefError(f"Invalid ref {ref!r}: {reason}")
    return ref


def _ref_problem(ref: str) -> str | None:
    for broken, reason in _REF_RULES:
        if broken(ref):
            return reason
    bad = sorted({ch for ch in ref if ch in _REF_FORBIDDEN})
    if bad:
        return f"a ref must not contain {''.join(bad)!r}"
    for part in ref.split("/"):
        if part.startswith("."):
            return f"a ref component must not start with '.' ({part!r})"
        if part.endswith(".lock"):
            return f"a ref component must not end with '.lock' ({part!r})"
    return None


def validate_rev(rev: str) -> str:
    """Return ``rev`` if it is a commit id (normalized to lowercase) or a valid ref name."""
    if isinstance(rev, str) and _ANY_CASE_SHA_RE.fullmatch(rev):
        return rev.lower()
    return validate_ref(rev)


def validate_path(path: str) -> str:
    """Return ``path`` if it is a relative in-tree path with no ``..``, ``.`` or empty part."""
    if not isinstance(path, str):
        raise GitError(f"Invalid path {path!r}: must be a string")
    reason = None
    if not path:
        reason = "a path must not be empty"
    elif "\x00" in path:
        reason = "a path must not contain NUL"
    elif path.startswith("/"):
        reason = "a path must be relative to the repository root"
    elif any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        reason = "a path must not contain '..', '.' or empty components"
    if reason is not None:
        raise GitError(f"Invalid path {path!r}: {reason}")
    return path.rstrip("/")


def canonical_source(source: str, *, allow_local: bool) -> str:
    """Return the canonical form of a repository source, refusing anything unsafe."""
    if not isinstance(source, str):
        raise InvalidSourceError(f"Invalid source {source!r}: must be a string")
    if not source:
        raise InvalidSourceError(f"Invalid source {source!r}: must not be empty")
    if source.startswith("-"):
        raise InvalidSourceError(f"Invalid source {source!r}: must not start with '-'")
    if _has_control(source):
        raise InvalidSourceError(f"Invalid source {source!r}: contains control characters")
    if _HELPER_RE.match(source):
        helper = source.split("::", 1)[0]
        raise InvalidSourceError(
            f"Invalid source {source!r}: remote helper syntax '{helper}::' is not allowed"
        )
    scheme_match = _SCHEME_RE.match(source)
    if scheme_match is not None:
        return _canonical_url(source, scheme_match.group(1).lower(), allow_local=allow_local)
    scp = _SCP_RE.fullmatch(source)
    if scp is not None:
        return _canonical_scp(source, scp)
    return _canonical_local(source, source, allow_local=allow_local)


def _refuse(source: str, why: str) -> InvalidSourceError:
    return InvalidSourceError(f"Invalid source {source!r}: {why}")


def _canonical_url(source: str, scheme: str, *, allow_local: bool) -> str:
    _check_url_chars(source)
    if scheme == "file":
        return _canonical_file_url(source, allow_local=allow_local)
    if scheme == "http":
        raise _refuse(
            source, "plain http:// is not allowed (no integrity or privacy); use https://"
        )
    if scheme not in _DEFAULT_PORTS:
        raise _refuse(source, f"scheme '{scheme}://' is not allowed; use https:// or ssh://")
    parts = _split(source)
    if parts.query or parts.fragment or "?" in source or "#" in source:
        raise _refuse(source, "a repository URL must not have a query or fragment")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and not userinfo:
        raise _refuse(source, "the user name before '@' is empty")
    user = _check_user(source, userinfo, secret=scheme == "https") + at
    host, port = _split_host_port(source, hostport)
    path = _check_repo_path(source, parts.path)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{user}{host}{path}"


def _check_url_chars(source: str) -> None:
    # Local paths may hold spaces; URLs never, and a backslash only means a Windows path.
    if any(ch.isspace() or ch == "\\" for ch in source):
        raise _refuse(source, "a URL must not contain whitespace or backslashes")


def _canonical_file_url(source: str, *, allow_local: bool) -> str:
    if not allow_local:
        raise _refuse(source, "file:// sources are not allowed (allow_local is off)")
    parts = _split(source)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise _refuse(source, "a file:// URL must be file:///absolute/path")
    # Same repository, same name: file:///x and /x canonicalize identically.
    return _canonical_local(source, unquote(parts.path), allow_local=True)


def _check_user(source: str, user: str, *, secret: bool) -> str:
    # An https user name is a token more often than not; an ssh user name is just "git".
    if user and secret:
        raise _refuse(source, "credentials must not be part of a source")
    if ":" in user:
        raise _refuse(source, "a password must not be part of a source")
    if user and not _USER_RE.fullmatch(user):
        raise _refuse(source, f"user {user!r} is not a plain user name")
    return user


def _check_repo_path(source: str, path: str) -> str:
    path = path.rstrip("/")
    if not path:
        raise _refuse(source, "the URL has no repository path")
    if path.lstrip("/").startswith("-"):
        raise _refuse(source, "the repository path must not start with '-'")
    return path


def _split(source: str) -> SplitResult:
    try:
        return urlsplit(source)
    except ValueError as exc:
        raise _refuse(source, f"malformed URL ({exc})") from exc


def _split_host_port(source: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("-"):
        raise _refuse(source, f"host {hostport!r} must not start with '-'")
    host, port_text = hostport, ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise _refuse(source, f"host {hostport!r} is malformed")
            port_text = rest[1:]
    elif ":" in hostport:
        host, port_text = hostport.split(":", 1)
    host = host.lower()
    _check_host(source, host)
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _refuse(source, f"port {port_text!r} is not a number in 1..65535")
    return host, int(port_text)


def _check_host(source: str, host: str) -> None:
    if not host:
        raise _refuse(source, "the URL has no host")
    if host.startswith("-"):
        raise _refuse(source, f"host {host!r} must not start with '-'")
    if not (_HOSTNAME_RE.fullmatch(host) or _IPV6_RE.fullmatch(host)):
        raise _refuse(source, f"host {host!r} is not a valid host name")


def _canonical_scp(source: str, scp: re.Match[str]) -> str:
    _check_url_chars(source)
    user = scp.group("user")
    prefix = _check_user(source, user, secret=False) + "@" if user is not None else ""
    host = scp.group("host").lower()
    _check_host(source, host)
    path = _check_repo_path(source, scp.group("path"))
    return f"{prefix}{host}:{path}"


def _canonical_local(source: str, path_text: str, *, allow_local: bool) -> str:
    if not allow_local:
        raise _refuse(source, "local paths are not allowed (allow_local is off)")
    if not path_text:
        raise _refuse(source, "the path is empty")
    # No expanduser: '~' in a service's input is a literal name, not someone's home.
    path = Path(path_text).resolve()
    if not path.is_dir():
        raise _refuse(source, f"{str(path)!r} is not an existing directory")
    return str(path)


def is_local_source(canonical: str) -> bool:
    """True when a canonical source is a local directory rather than a URL."""
    return canonical.startswith("/")


def repo_name_from_source(canonical: str) -> str:
    """Return the default repository name: the source's last path component without .git."""
    if _SCHEME_RE.match(canonical):
        path = urlsplit(canonical).path
    elif is_local_source(canonical):
        path = canonical
    else:
        path = canonical.split(":", 1)[-1]
    name = PurePosixPath(path.rstrip("/")).name
    name = name.removesuffix(".git")
    if name in ("", ".", ".."):
        raise InvalidSourceError(
            f"Invalid source {canonical!r}: no repository name in its last path component"
        )
    return name
