"""The environment a sandboxed child sees: an allow-list, never the worker's own variables.

Only a fixed handful of harmless variables pass through from the worker's environ (``PATH``
and the locale); ``HOME`` and ``TMPDIR`` point at the run's scratch directory; a few Python
basics are set; everything else comes from the caller's explicit ``extra`` mapping.

The allow-list is the protection. The secret-name pattern is a second net for the caller's
own mistakes: an extra variable whose *name* looks like a credential (``AWS_*``,
``FUZZORCH_*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, …) is refused with an error, not
silently dropped, unless the caller lists that exact name in ``allow_secret_names`` (an
environment build that needs ``PIP_INDEX_URL`` with a token in it, for instance).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

from workers.errors import SandboxConfigError

# Names copied from the worker's environ when present. Nothing else ever passes through.
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

# Set for every child: unbuffered output so the worker sees libFuzzer's lines as they are
# printed, no bytecode writes into read-only caches, no user site-packages from HOME.
BASE = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "LANG": "C.UTF-8",
}

SECRET_NAME = re.compile(
    r"""(?ix)
    ^(FUZZORCH|AWS|AZURE|GOOGLE|GCP|GCLOUD|GH|GITHUB|GITLAB|MINIO|VAULT|DOCKER|NPM|PYPI|TWINE)_
    | SECRET | (^|_)TOKENS?($|_) | PASSW | CREDENTIAL | PRIVATE | COOKIE
    | API_?KEY | ACCESS_?KEY | _KEY$ | ^KEY$ | (^|_)AUTH($|_|ORIZATION) | (^|_)DSN$
    | ^(DATABASE|BROKER|REDIS|STORAGE|S3)_URL$
    """
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name looks like it carries a credential."""
    return SECRET_NAME.search(name) is not None


def build_env(
    environ: Mapping[str, str],
    extra: Mapping[str, str],
    *,
    scratch: Path,
    allow_secret_names: Collection[str] = (),
) -> dict[str, str]:
    """The child's complete environment: passthrough basics, scratch paths, then ``extra``."""
    env = dict(BASE)
    for name in PASSTHROUGH:
        if name in environ:
            env[name] = environ[name]
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(scratch)
    env["TMPDIR"] = str(scratch)
    for name, value in extra.items():
        check_variable(name, value, allow_secret_names)
        env[name] = value
    return env


def check_variable(name: str, value: str, allow_secret_names: Collection[str] = ()) -> None:
    """Refuse a malformed variable, or one whose name looks secret and was not allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SandboxConfigError(f"Invalid environment variable name {name!r}")
    if not isinstance(value, str) or "\0" in value:
        # The value is not shown: it may be the very secret we are guarding.
        raise SandboxConfigError(f"Invalid value for environment variable {name!r}")
    if looks_secret(name) and name not in allow_secret_names:
        raise SandboxConfigError(
            f"Refusing to pass {name!r} to untrusted code: the name looks like a credential"
            " (list it in Policy.allow_secret_names if the child really needs it)"
        )
