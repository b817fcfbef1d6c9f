"""Stable identities that name stored data (changing one orphans it: see DESIGN.md)."""

from __future__ import annotations

import hashlib


def harness_id(name: str) -> str:
    """The harness id used in object keys: 16 hex digits of the sha256 of the harness name."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def content_id(data: bytes) -> str:
    """The content address of an input (libFuzzer's file name for it): its sha1 in hex."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()
