"""Seed corpora: OSS-Fuzz naming, configured folders, and hostile archives refused."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from harnesses.model import Harness, HarnessKind, HarnessOptions
from harnesses.seeds import SeedArchiveError, SeedLimits, SeedSources, seed_sources, zip_units
from harnesses.tree import TreeFile


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _files(*paths: str) -> dict[str, TreeFile]:
    return {p: TreeFile(p, 10) for p in paths}


def test_oss_fuzz_seed_and_dict_names_are_found() -> None:
    harness = Harness("fuzz/fuzz_json.py", HarnessKind.ATHERIS, "fuzz/fuzz_json.py")
    files = _files(
        "fuzz/fuzz_json.py",
        "fuzz/fuzz_json_seed_corpus.zip",
        "fuzz/fuzz_json_seed_corpus/a",
        "fuzz/fuzz_json.dict",
    )
    assert seed_sources(harness, files) == SeedSources(
        seed_dir="fuzz/fuzz_json_seed_corpus",
        seed_zip="fuzz/fuzz_json_seed_corpus.zip",
        dictionary="fuzz/fuzz_json.dict",
    )


def test_configured_seeds_and_dictionary_win() -> None:
    harness = Harness(
        "fuzz_x.py",
        HarnessKind.ATHERIS,
        "fuzz_x.py",
        HarnessOptions(seeds="corpora/x", dictionary="dicts/x.dict"),
    )
    files = _files("fuzz_x.py", "corpora/x/1", "fuzz_x_seed_corpus.zip", "fuzz_x.dict")
    assert seed_sources(harness, files) == SeedSources(
        seed_dir="corpora/x", dictionary="dicts/x.dict"
    )


def test_units_come_out_of_a_normal_archive() -> None:
    data = _zip({"a": b"first", "dir/b": b"second", "empty": b""})
    assert sorted(zip_units(data)) == [b"", b"first", b"second"]


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (_zip({"../escape": b"x"}), "'../escape' points outside"),
        (_zip({"/abs": b"x"}), "'/abs' points outside"),
        (_zip({}, symlink="link"), "'link' is a symlink"),
        (b"not a zip at all", "not a zip archive"),
    ],
)
def test_hostile_archives_are_refused(archive: bytes, message: str) -> None:
    with pytest.raises(SeedArchiveError, match=message):
        list(zip_units(archive))


def test_member_count_and_total_size_are_bounded() -> None:
    many = _zip({str(i): b"x" for i in range(20)})
    with pytest.raises(SeedArchiveError, match="20 members"):
        list(zip_units(many, SeedLimits(max_members=10)))
    big = _zip({str(i): b"y" * 1000 for i in range(5)})
    with pytest.raises(SeedArchiveError, match="more than 3000 bytes"):
        list(zip_units(big, SeedLimits(max_total_bytes=3000)))


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    bomb = _zip({"bomb": b"\0" * 50_000_000})
    assert len(bomb) < 100_000
    with pytest.raises(SeedArchiveError, match="more than"):
        list(zip_units(bomb, SeedLimits(max_unit_bytes=100_000_000, max_total_bytes=10_000_000)))


def test_oversized_units_are_skipped_not_fatal() -> None:
    data = _zip({"small": b"ok", "large": b"z" * 5000})
    assert list(zip_units(data, SeedLimits(max_unit_bytes=1000))) == [b"ok"]


def test_a_member_that_lies_about_its_size_is_refused() -> None:
    data = bytearray(_zip({"liar": b"A" * 5000}))
    # Shrink the declared uncompressed size in both headers to 10 bytes.
    declared = (5000).to_bytes(4, "little")
    for _ in range(2):
        index = data.find(declared)
        data[index : index + 4] = (10).to_bytes(4, "little")
    with pytest.raises(SeedArchiveError, match="'liar'"):
        list(zip_units(bytes(data), SeedLimits(max_unit_bytes=100)))
