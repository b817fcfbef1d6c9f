"""Sealed webhook secrets: round trips, and every way a sealed value can fail to open."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.secretbox import (
    SecretBox,
    SecretKeyError,
    generate_key,
    new_webhook_secret,
    parse_key,
)

KEY = parse_key(generate_key())
BOX = SecretBox(KEY)
SECRET = b"whsec-0123456789"


def test_a_sealed_secret_opens_again() -> None:
    sealed = BOX.seal(SECRET, context="acme/parser")
    assert sealed.startswith("v1:")
    assert SECRET not in sealed.encode()
    assert BOX.open(sealed, context="acme/parser") == SECRET


def test_sealing_twice_gives_different_values() -> None:
    # A fresh nonce every time: equal secrets must not be recognisable at rest.
    assert BOX.seal(SECRET, context="r") != BOX.seal(SECRET, context="r")


def test_empty_and_binary_plaintexts_round_trip() -> None:
    for plaintext in (b"", bytes(range(256))):
        assert BOX.open(BOX.seal(plaintext, context=""), context="") == plaintext


def test_a_fresh_box_with_the_same_key_opens_it() -> None:
    text = generate_key()
    sealed = SecretBox(parse_key(text)).seal(SECRET, context="r")
    assert SecretBox(parse_key(text)).open(sealed, context="r") == SECRET


def test_the_wrong_key_cannot_open_it() -> None:
    sealed = BOX.seal(SECRET, context="acme/parser")
    other = SecretBox(parse_key(generate_key()))
    with pytest.raises(SecretKeyError, match=r"cannot decrypt .*\(wrong server key or tampered\)"):
        other.open(sealed, context="acme/parser")


def test_a_sealed_secret_does_not_open_for_another_repository() -> None:
    sealed = BOX.seal(SECRET, context="acme/parser")
    for context in ("acme/other", "acme/parser ", "", "ACME/parser"):
        with pytest.raises(SecretKeyError, match="wrong server key or tampered"):
            BOX.open(sealed, context=context)


def _flip(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("v1:")))
    raw[index] ^= 0x01
    return "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()


def test_every_tampered_byte_is_detected() -> None:
    sealed = BOX.seal(SECRET, context="r")
    length = len(base64.urlsafe_b64decode(sealed.removeprefix("v1:")))
    assert length == 12 + len(SECRET) + 16
    for index in range(length):
        with pytest.raises(SecretKeyError, match="wrong server key or tampered"):
            BOX.open(_flip(sealed, index), context="r")


def _garbage() -> list[str]:
    sealed = BOX.seal(SECRET, context="r")
    body = sealed.removeprefix("v1:")
    return [
        "",
        "v1:",
        "v1",
        body,
        "v2:" + body,
        "V1:" + body,
        " " + sealed,
        sealed + " ",
        sealed + "\n",
        sealed[:-1],  # only the padding: still not what seal wrote
        sealed[:-2],
        sealed[:-4],
        sealed[: len("v1:") + 20],
        "v1:" + "A" * 36,  # 27 bytes: shorter than a nonce and a tag
        "v1:" + body.replace("-", "+").replace("_", "/") + "+/",
        "v1:" + body + "!",
        "v1:" + body + "====",
        "v1:" + "é" * 40,
        "v1:" + "A" * 44,  # well-formed and long enough, but never sealed
    ]


@pytest.mark.parametrize("sealed", _garbage())
def test_malformed_sealed_values_are_refused(sealed: str) -> None:
    with pytest.raises(
        SecretKeyError, match=r"^cannot decrypt .*\(wrong server key or tampered\)$"
    ):
        BOX.open(sealed, context="r")


@settings(max_examples=300, deadline=None)
@given(sealed=st.text() | st.text(alphabet="AZaz09-_=").map(lambda s: "v1:" + s))
def test_arbitrary_text_only_ever_raises_secret_key_error(sealed: str) -> None:
    with pytest.raises(SecretKeyError):
        BOX.open(sealed, context="r")


@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(max_size=200), context=st.text())
def test_round_trip_property(plaintext: bytes, context: str) -> None:
    try:
        sealed = BOX.seal(plaintext, context=context)
    except SecretKeyError:
        assert not _encodable(context)
        return
    assert BOX.open(sealed, context=context) == plaintext


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- Keys -------------------------------------------------------------------------------


def test_generated_keys_parse_to_32_bytes() -> None:
    text = generate_key()
    assert len(parse_key(text)) == 32
    assert parse_key(text) == base64.urlsafe_b64decode(text)
    assert generate_key() != text


def test_keys_may_come_without_padding_or_with_surrounding_blanks() -> None:
    text = generate_key()
    assert parse_key(text.rstrip("=")) == parse_key(text)
    assert parse_key(f"  {text}\n") == parse_key(text)


def _key_variants() -> list[tuple[str, str]]:
    text = base64.urlsafe_b64encode(bytes(range(200, 232))).decode()
    assert "-" in text or "_" in text  # so the standard-alphabet variant differs
    last = text.rstrip("=")[-1]
    # The last character of 43 carries 4 bits; flipping a low bit gives a non-canonical text.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sloppy = text[:42] + alphabet[alphabet.index(last) ^ 1] + "="
    return [
        ("", "empty"),
        ("   ", "empty"),
        (text.replace("-", "+").replace("_", "/"), "not URL-safe base64"),
        (text[:20] + "!" + text[21:], "not URL-safe base64"),
        (text[:20] + " " + text[21:], "not URL-safe base64"),
        (text[:20] + "é" + text[21:], "not URL-safe base64"),
        (text + "=", "not URL-safe base64"),
        (sloppy, "not URL-safe base64"),
        (text[:40], "must decode to 32 bytes, not 30"),
        (base64.urlsafe_b64encode(bytes(range(200, 216))).decode(), "32 bytes, not 16"),
        (base64.urlsafe_b64encode(bytes(range(200, 248))).decode(), "32 bytes, not 48"),
    ]


@pytest.mark.parametrize(("text", "match"), _key_variants())
def test_bad_keys_are_refused_without_repeating_them(text: str, match: str) -> None:
    with pytest.raises(SecretKeyError, match=match) as info:
        parse_key(text)
    message = str(info.value)
    if text.strip():
        assert text.strip() not in message
        assert text.strip()[:8] not in message


def test_a_box_needs_a_32_byte_key() -> None:
    for key in (b"", b"x" * 16, b"x" * 33):
        with pytest.raises(SecretKeyError, match="32 bytes"):
            SecretBox(key)


def test_a_box_does_not_show_its_key() -> None:
    assert repr(BOX) == "SecretBox(<key hidden>)"
    assert KEY.hex() not in repr(BOX)


def test_new_webhook_secrets_are_random_url_safe_text() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first != second
    assert len(first) >= 43
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
