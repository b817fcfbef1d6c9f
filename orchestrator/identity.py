"""Names and ids the trusted side hands out: repository slugs and opaque record ids."""

from __future__ import annotations

import re
import secrets
import time

_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def validate_repo_name(name: str) -> str:
    """Return ``name`` if it is a valid repository slug, else raise ValueError naming it."""
    if not isinstance(name, str) or not _SLUG.fullmatch(name) or name.endswith((".", ".git")):
        raise ValueError(
            f"Invalid repository name {name!r}: use 1-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (no slashes or spaces)"
        )
    return name


def new_id(prefix: str) -> str:
    """An opaque id that sorts by creation time: ``prefix-<time hex><random hex>``."""
    return f"{prefix}-{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"
