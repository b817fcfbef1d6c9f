"""Webhook secrets at rest: sealed with the server key, opened again to check signatures.

A forge signs deliveries with a shared secret, so the server must be able to recover it; a
hash would not do. Secrets are sealed with AES-256-GCM under the server key, with the
repository as associated data: a sealed secret copied onto another repository's row does not
open there. Nothing here logs or repeats a key, a secret or a sealed value.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.errors import FuzzorchError

__all__ = ["SecretBox", "SecretKeyError", "generate_key", "new_webhook_secret", "parse_key"]

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_PREFIX = "v1:"
# Binds the format version and purpose into every tag, so a value sealed for anything else
# under the same key, or by a later format, never opens as a v1 webhook secret.
_AAD_PREFIX = b"fuzzorch secretbox v1\x00"
_B64_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DECRYPT_FAILED = "cannot decrypt the sealed secret{} (wrong server key or tampered)"


class SecretKeyError(FuzzorchError, ValueError):
    """A server key is malformed, or a sealed secret does not open under it."""

    exit_code = 2


def parse_key(text: str) -> bytes:
    """Decode a server key: URL-safe base64 of exactly 32 bytes (surrounding blanks ignored)."""
    # Messages describe the problem only: the text is the key, or something close to it.
    if not isinstance(text, str):
        raise SecretKeyError("the server key must be a string")
    text = text.strip()
    if not text:
        raise SecretKeyError("the server key is empty")
    key = _b64decode(text)
    if key is None:
        raise SecretKeyError(
            "the server key is not URL-safe base64 (letters, digits, '-', '_', '=' padding)"
        )
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"the server key must decode to {KEY_BYTES} bytes, not {len(key)}; "
            "generate one with orchestrator.secretbox.generate_key()"
        )
    return key


def generate_key() -> str:
    """Return a fresh random server key as URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def new_webhook_secret() -> str:
    """Return a fresh webhook secret to give to a forge."""
    return secrets.token_urlsafe(32)


class SecretBox:
    """Seals and opens secrets with one server key (AES-256-GCM, context as associated data)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise SecretKeyError(f"a server key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: bytes, *, context: str) -> str:
        """Encrypt ``plaintext`` for ``context``: ``v1:`` + URL-safe base64(nonce + ciphertext)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _aad(context))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, context: str) -> bytes:
        """Decrypt what ``seal`` returned for the same ``context``; SecretKeyError otherwise."""
        if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
            raise SecretKeyError(_DECRYPT_FAILED.format(": not a 'v1:' sealed value"))
        raw = _b64decode(sealed.removeprefix(_PREFIX), padded=True)
        if raw is None or len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretKeyError(_DECRYPT_FAILED.format(": malformed or truncated"))
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(context))
        except InvalidTag as exc:
            raise SecretKeyError(_DECRYPT_FAILED.format("")) from exc


def _aad(context: str) -> bytes:
    try:
        return _AAD_PREFIX + context.encode("utf-8")
    except UnicodeEncodeError:
        raise SecretKeyError("the context of a sealed secret must be valid text") from None


def _b64decode(text: str, *, padded: bool = False) -> bytes | None:
    # urlsafe_b64decode silently drops characters outside the alphabet and accepts
    # non-canonical trailing bits; only the canonical spelling of a value is accepted, with
    # its padding optional unless ``padded`` (seal always writes it).
    if not _B64_RE.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    canonical = base64.urlsafe_b64encode(raw).decode("ascii")
    spellings = (canonical,) if padded else (canonical, canonical.rstrip("="))
    return raw if text in spellings else None
