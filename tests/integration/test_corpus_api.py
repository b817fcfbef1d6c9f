"""A harness's corpus through the API, on SQLite and PostgreSQL: tar uploads (plain and
compressed) and downloads, and every hostile archive refused whole, naming its member."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.server import routes_corpus
from orchestrator.store.database import Database
from orchestrator.tarsafe import TarLimits
from tests.support import fixture_repos
from tests.support.api import Api, running_api

REPO = "fuzzy"
HARNESS = "fuzz_parse.py"  # oss_fuzz_style: its seed corpus holds b"a,b" and b"c"
SEEDS = {b"a,b", b"c"}
CORPUS = f"/api/v1/repos/{REPO}/corpus"


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[Api]:
    with running_api(tmp_path, database) as api:
        source = fixture_repos.oss_fuzz_style(tmp_path).path
        added = api.client.post("/api/v1/repos", headers=api.auth("admin"),
                                json={"source": str(source), "name": REPO})  # fmt: skip
        assert added.status_code == 201, added.text
        assert HARNESS in {h["name"] for h in added.json()["harnesses"]}, added.json()
        yield api


def stored(api: Api) -> dict[str, bytes]:
    """Every corpus object in the store."""
    objects = api.services.objects
    return {key: objects.get(key) for key in objects.iter_keys("corpus/")}


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# -- building archives ---------------------------------------------------------------------


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **extra: object) -> Member:
    """A tar member: ``(TarInfo, data)``."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, data


def tar(*members: Member) -> bytes:
    """A GNU-format tar of ``members``, written as given (tarfile does not sanitise on write)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def units_tar(units: list[bytes]) -> bytes:
    return tar(*(member(f"corpus/unit-{n}", data) for n, data in enumerate(units)))


COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def upload(api: Api, body: bytes, role: str = "admin", harness: str = HARNESS) -> Any:
    headers = {**api.auth(role), "Content-Type": "application/x-tar"}
    return api.client.post(CORPUS, params={"harness": harness}, content=body, headers=headers)


def download(api: Api, role: str = "viewer", harness: str = HARNESS) -> Any:
    return api.client.get(CORPUS, params={"harness": harness}, headers=api.auth(role))


def downloaded_units(api: Api) -> dict[str, bytes]:
    answer = download(api)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:") as archive:
        found = {}
        for info in archive.getmembers():
            assert info.isreg(), info
            extracted = archive.extractfile(info)
            assert extracted is not None
            found[info.name] = extracted.read()
    return found


# -- uploads and downloads -----------------------------------------------------------------


def test_a_download_is_the_seed_corpus_named_by_sha1(api: Api) -> None:
    assert downloaded_units(api) == {sha1(unit): unit for unit in SEEDS}


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_an_upload_adds_its_new_units_and_a_download_returns_them(
    api: Api, compression: str
) -> None:
    fresh = [b"x,y", b"", b"\x00\xff" * 300]
    body = COMPRESSIONS[compression](units_tar([*fresh, b"a,b", b"x,y"]))  # a seed, a repeat
    answer = upload(api, body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"harness": HARNESS, "added": 3, "present": 1, "skipped": 0}
    everything = SEEDS | set(fresh)
    assert downloaded_units(api) == {sha1(unit): unit for unit in everything}
    again = upload(api, body)  # all of it present now
    assert again.json() == {"harness": HARNESS, "added": 0, "present": 4, "skipped": 0}


def test_a_tar_with_folders_stores_the_files_only(api: Api) -> None:
    folder, nested = (
        member("corpus", kind=tarfile.DIRTYPE),
        member("corpus/in", kind=tarfile.DIRTYPE),
    )
    body = tar(folder, member("corpus/one", b"1"), nested, member("corpus/in/two", b"2"))
    answer = upload(api, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["added"] == 2
    assert set(downloaded_units(api)) == {sha1(u) for u in SEEDS | {b"1", b"2"}}


# -- hostile archives ----------------------------------------------------------------------

GOOD = member("corpus/good", b"a good unit, never stored: the upload is all or nothing")


def _bomb() -> bytes:
    """60 MiB of zeros in 60 members of 1 MiB (each under max_unit_bytes): ~60 KiB gzipped."""
    zeros = bytes(1024 * 1024)
    return gzip.compress(tar(GOOD, *(member(f"zeros-{n}", zeros) for n in range(60))), 9)


def _truncated() -> bytes:
    whole = tar(GOOD, member("corpus/cut", b"z" * 5000))
    return whole[: 3 * 512 + 2000]  # GOOD's header and data, then "cut" in its data


def _with_good(*members: Member) -> Callable[[], bytes]:
    return lambda: tar(GOOD, *members)


def _truncated_gz() -> bytes:
    return gzip.compress(tar(GOOD, member("corpus/b", b"b" * 9000)))[:-40]


# case -> (the body, what the message must name, a word of the rule it must give)
HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "dot-dot": (_with_good(member("../evil", b"x")), "'../evil'", "'..'"),
    "inner-dot-dot": (_with_good(member("a/../../evil", b"x")), "'a/../../evil'", "'..'"),
    "absolute": (_with_good(member("/etc/passwd", b"root:x:0:0")), "'/etc/passwd'", "absolute"),
    "symlink": (
        _with_good(member("link", kind=tarfile.SYMTYPE, linkname="/etc/passwd")),
        "'link'",
        "symbolic link",
    ),
    "hardlink": (
        _with_good(member("hard", kind=tarfile.LNKTYPE, linkname="corpus/good")),
        "'hard'",
        "hard link",
    ),
    "char-device": (
        _with_good(member("null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)),
        "'null'",
        "character device",
    ),
    "block-device": (_with_good(member("sda", kind=tarfile.BLKTYPE, devmajor=8)), "'sda'", "block"),
    "fifo": (_with_good(member("pipe", kind=tarfile.FIFOTYPE)), "'pipe'", "FIFO"),
    "gzip-bomb": (_bomb, "'zeros-", "max_ratio"),
    "truncated": (_truncated, "'corpus/cut'", "ends after"),
    "truncated-gz": (_truncated_gz, "archive", "gzip data ends early"),
    "not-a-tar": (lambda: b"PK\x03\x04 a zip" + bytes(600), "archive", "checksum"),
    "empty": (lambda: b"", "archive", "empty"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_whole_naming_the_member(api: Api, case: str) -> None:
    build, named, rule = HOSTILE[case]
    body = build()
    before = stored(api)
    started = time.monotonic()
    answer = upload(api, body)
    elapsed = time.monotonic() - started
    assert answer.status_code == 400, (answer.status_code, answer.text)
    detail = answer.json()["detail"]
    assert named in detail, detail
    assert rule in detail, detail
    assert stored(api) == before  # not even GOOD, which came first
    assert elapsed < 5, f"{case} took {elapsed:.1f}s to refuse"


def test_a_gzip_bomb_is_refused_before_it_is_inflated(api: Api) -> None:
    body = gzip.compress(bytes(60 * 1024 * 1024), 9)  # not even a tar: zero blocks end it
    started = time.monotonic()
    answer = upload(api, body)
    elapsed = time.monotonic() - started
    assert answer.status_code == 400, answer.text
    assert "Refused archive" in answer.json()["detail"]
    assert elapsed < 2, f"took {elapsed:.1f}s: inflated whole?"
    assert downloaded_units(api) == {sha1(unit): unit for unit in SEEDS}


def test_an_upload_over_the_size_limit_is_413_and_stores_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_corpus, "LIMITS", TarLimits(max_archive_bytes=16 * 1024))
    fits = upload(api, units_tar([b"small"]))  # one 10 KiB tar record
    assert fits.status_code == 200, fits.text
    before = stored(api)
    answer = upload(api, units_tar([bytes([n]) * 1000 for n in range(20)]))
    assert answer.status_code == 413, answer.text
    assert "16384 bytes" in answer.json()["detail"]
    assert stored(api) == before


def test_units_adding_up_over_the_total_limit_are_413_and_store_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small upload can still inflate to too much: refused whole, naming the member.
    monkeypatch.setattr(routes_corpus, "LIMITS", TarLimits(max_total_bytes=64 * 1024))
    before = stored(api)
    body = gzip.compress(units_tar([bytes([n]) * 20_000 for n in range(5)]))
    answer = upload(api, body)
    assert answer.status_code == 413, answer.text
    assert "'corpus/unit-3'" in answer.json()["detail"]
    assert "max_total_bytes=65536" in answer.json()["detail"]
    assert stored(api) == before


def test_a_unit_over_the_unit_limit_is_refused_naming_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_corpus, "LIMITS", TarLimits(max_unit_bytes=100))
    before = stored(api)
    answer = upload(api, tar(GOOD, member("corpus/big", bytes(101))))
    assert answer.status_code == 400, answer.text
    assert "'corpus/big'" in answer.json()["detail"]
    assert "max_unit_bytes=100" in answer.json()["detail"]
    assert stored(api) == before


# -- names and roles -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unknown_harness_or_repository_is_404(api: Api, method: str) -> None:
    before = stored(api)
    for path, harness, named in (
        (CORPUS, "fuzz_nope.py", "'fuzz_nope.py'"),
        ("/api/v1/repos/nope/corpus", HARNESS, "'nope'"),
    ):
        body = units_tar([b"u"])
        answer = api.client.request(method, path, params={"harness": harness}, content=body,
                                    headers=api.auth("admin"))  # fmt: skip
        assert answer.status_code == 404, (path, answer.text)
        assert named in answer.json()["detail"]
    missing = api.client.request(method, CORPUS, headers=api.auth("admin"))
    assert missing.status_code == 422
    assert "harness" in missing.text
    assert stored(api) == before


def test_a_viewer_may_download_but_not_upload(api: Api) -> None:
    assert download(api, "viewer").status_code == 200
    before = stored(api)
    for role in ("viewer", "triager"):
        answer = upload(api, units_tar([b"from a " + role.encode()]), role=role)
        assert answer.status_code == 403, answer.text
        assert f"role {role!r}" in answer.json()["detail"]
    assert stored(api) == before


def test_any_upload_is_a_200_or_a_400(api: Api) -> None:
    good = units_tar([b"one", b"two" * 100])

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(
        st.one_of(
            st.binary(max_size=2048),
            st.integers(0, len(good)).map(lambda n: good[:n]),
            st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)).map(
                lambda edit: good[: edit[0]] + bytes([edit[1]]) + good[edit[0] + 1 :]
            ),
        ),
        st.sampled_from(sorted(COMPRESSIONS)),
    )
    def run(body: bytes, compression: str) -> None:
        answer = upload(api, COMPRESSIONS[compression](body))
        assert answer.status_code in (200, 400), (answer.status_code, answer.text)

    run()
