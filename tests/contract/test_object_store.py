"""One suite for every object store: memory (the fake), filesystem, and S3 (real SeaweedFS).

The last sections hold what only some stores promise (symlink safety on disk, refusing
key/folder conflicts) and a Hypothesis state machine that checks the fake and the
filesystem store agree on every sequence of operations.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from workers.errors import InvalidKeyError, ObjectNotFoundError, StorageError
from workers.storage import (
    FilesystemObjectStore,
    ListPage,
    MemoryObjectStore,
    ObjectInfo,
    ObjectStore,
)

KINDS = ["memory", "filesystem", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ObjectStore:
    if kind == "memory":
        return MemoryObjectStore()
    if kind == "filesystem":
        return FilesystemObjectStore(tmp_path / "store")
    s3_store: ObjectStore = request.getfixturevalue("s3_store")
    return s3_store


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- writing and reading ---------------------------------------------------------------------


def test_put_if_absent_writes_once_and_never_overwrites(store: ObjectStore) -> None:
    assert store.put_if_absent("corpus/r/h/k1", b"first") is True
    assert store.put_if_absent("corpus/r/h/k1", b"second") is False
    assert store.put_if_absent("corpus/r/h/k1", b"first") is False
    assert store.get("corpus/r/h/k1") == b"first"
    assert store.stat("corpus/r/h/k1") == ObjectInfo(key="corpus/r/h/k1", size=5)
    assert store.exists("corpus/r/h/k1")


def test_put_file_if_absent_never_overwrites(store: ObjectStore, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"from a file")
    second.write_bytes(b"other")
    assert store.put_file_if_absent("crashes/r/h/x", first) is True
    assert store.put_file_if_absent("crashes/r/h/x", second) is False
    assert store.put_if_absent("crashes/r/h/x", b"other") is False
    assert store.get("crashes/r/h/x") == b"from a file"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", bytes(range(256)), b"\r\n\x1a\xff" * 1000, os.urandom(300_000)],
    ids=["empty", "nul", "all-bytes", "crlf-eof", "300k-random"],
)
def test_get_round_trips_arbitrary_bytes(store: ObjectStore, data: bytes) -> None:
    assert store.put_if_absent("blob/k", data)
    assert store.get("blob/k") == data
    assert store.stat("blob/k").size == len(data)


def test_a_multi_megabyte_object_round_trips_through_files(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for _ in range(12):
            out.write(os.urandom(1 << 20))
    size = source.stat().st_size

    assert store.put_file_if_absent("corpus/big/unit", source) is True
    assert store.stat("corpus/big/unit").size == size

    target = tmp_path / "out" / "big.copy"
    target.parent.mkdir()
    target.write_bytes(b"stale content that must be replaced")
    assert store.get_to_file("corpus/big/unit", target) == size
    assert sha256_of(target) == sha256_of(source)
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.copy"]  # no temp left


def test_get_to_file_of_a_missing_key_leaves_the_target_alone(
    store: ObjectStore, tmp_path: Path
) -> None:
    target = tmp_path / "keep.bin"
    target.write_bytes(b"keep me")
    with pytest.raises(ObjectNotFoundError, match="'missing/key'"):
        store.get_to_file("missing/key", target)
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "store") == ["keep.bin"]


def test_max_bytes_is_enforced(store: ObjectStore) -> None:
    store.put_if_absent("logs/c/j.txt", b"0123456789")
    assert store.get("logs/c/j.txt", max_bytes=10) == b"0123456789"
    assert store.get("logs/c/j.txt", max_bytes=1 << 30) == b"0123456789"
    with pytest.raises(StorageError, match=r"'logs/c/j\.txt'.* 10 bytes.*max_bytes=9"):
        store.get("logs/c/j.txt", max_bytes=9)
    store.put_if_absent("logs/c/empty.txt", b"")
    assert store.get("logs/c/empty.txt", max_bytes=0) == b""
    with pytest.raises(StorageError, match="max_bytes=0"):
        store.get("logs/c/j.txt", max_bytes=0)


def test_a_missing_key_is_reported_by_name(store: ObjectStore) -> None:
    store.put_if_absent("present/k", b"x")
    for call in (
        lambda: store.get("absent/k"),
        lambda: store.get("absent/k", max_bytes=5),
        lambda: store.stat("absent/k"),
    ):
        with pytest.raises(ObjectNotFoundError) as info:
            call()
        assert "'absent/k'" in str(info.value)
        assert isinstance(info.value, KeyError)
    assert store.exists("absent/k") is False
    assert store.exists("present") is False  # a folder is not an object
    with pytest.raises(ObjectNotFoundError):
        store.get("present")


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_if_absent("minimized/r/h/k", b"v1")
    store.put_if_absent("minimized/r/h/other", b"o")
    assert store.delete("minimized/r/h/k") is True
    assert store.delete("minimized/r/h/k") is False
    assert store.delete("never/was/here") is False
    assert not store.exists("minimized/r/h/k")
    with pytest.raises(ObjectNotFoundError):
        store.get("minimized/r/h/k")
    assert store.put_if_absent("minimized/r/h/k", b"v2") is True
    assert store.get("minimized/r/h/k") == b"v2"
    assert store.get("minimized/r/h/other") == b"o"
    assert store.delete("minimized/r/h") is False  # a folder is not an object
    assert list(store.iter_keys("")) == ["minimized/r/h/k", "minimized/r/h/other"]


def test_concurrent_put_if_absent_has_exactly_one_winner(store: ObjectStore) -> None:
    barrier = threading.Barrier(8)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def racer(index: int) -> None:
        try:
            barrier.wait()
            results[index] = store.put_if_absent("crashes/r/h/race", b"writer %d" % index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    winners = [index for index, wrote in results.items() if wrote]
    assert len(results) == 8
    assert len(winners) == 1
    assert store.get("crashes/r/h/race") == b"writer %d" % winners[0]


def test_describe_names_the_store(store: ObjectStore, kind: str) -> None:
    description = store.describe()
    assert description
    assert description in repr(store)
    if kind == "s3":
        assert "127.0.0.1" in description


# -- listing ---------------------------------------------------------------------------------

# Nested keys whose plain string order equals folder-walk order (see the punctuation test).
PAGED_KEYS = [
    f"p/k{i:02d}"
    if i % 3 == 0
    else f"p/n{i % 4}/k{i:02d}"
    if i % 3 == 1
    else f"p/n{i % 4}/m/k{i:02d}"
    for i in range(25)
]


def test_pagination_covers_every_key_once_in_order(store: ObjectStore) -> None:
    for key in [*PAGED_KEYS, "o/before", "q/after", "pz"]:
        assert store.put_if_absent(key, key.encode())

    pages: list[ListPage] = []
    start_after = ""
    while True:
        page = store.list_page("p/", start_after=start_after, limit=7)
        pages.append(page)
        assert list(page.keys) == sorted(page.keys)
        if page.next_start_after is None:
            break
        assert page.next_start_after == page.keys[-1]
        start_after = page.next_start_after
        assert len(pages) < 10, "pagination does not end"

    assert [len(page.keys) for page in pages] == [7, 7, 7, 4]
    listed = [key for page in pages for key in page.keys]
    assert listed == sorted(PAGED_KEYS)
    assert list(store.iter_keys("p/")) == sorted(PAGED_KEYS)
    assert list(store.iter_keys("p")) == sorted([*PAGED_KEYS, "pz"])


def test_a_full_last_page_ends_the_listing(store: ObjectStore) -> None:
    keys = [f"x/{i:02d}" for i in range(14)]
    for key in keys:
        store.put_if_absent(key, b"")
    first = store.list_page("x/", limit=7)
    second = store.list_page("x/", start_after=first.keys[-1], limit=7)
    assert first == ListPage(tuple(keys[:7]), keys[6])
    assert second == ListPage(tuple(keys[7:]), None)


def test_prefixes_match_strings_not_just_folders(store: ObjectStore) -> None:
    keys = ["a/b/x", "a/b/y/z", "a/bc", "a/bd/q", "a/c", "ab"]
    for key in keys:
        store.put_if_absent(key, b"v")

    assert list(store.iter_keys("a/b")) == ["a/b/x", "a/b/y/z", "a/bc", "a/bd/q"]
    assert list(store.iter_keys("a/b/")) == ["a/b/x", "a/b/y/z"]
    assert list(store.iter_keys("a/bc")) == ["a/bc"]
    assert list(store.iter_keys("a/bc/")) == []
    assert list(store.iter_keys("a/b/y/z")) == ["a/b/y/z"]
    assert list(store.iter_keys("zz")) == []
    assert list(store.iter_keys("")) == keys
    assert store.list_page("a/b", limit=2) == ListPage(("a/b/x", "a/b/y/z"), "a/b/y/z")


def test_start_after_is_exclusive_and_may_be_any_key(store: ObjectStore) -> None:
    keys = ["s/1", "s/2", "s/3/x", "s/4"]
    for key in keys:
        store.put_if_absent(key, b"v")
    assert store.list_page("s/", start_after="s/2").keys == ("s/3/x", "s/4")
    assert store.list_page("s/", start_after="s/3/x").keys == ("s/4",)
    assert store.list_page("s/", start_after="s/4").keys == ()
    assert store.list_page("s/", start_after="a").keys == tuple(keys)
    assert store.list_page("s/", start_after="t").keys == ()


def test_an_empty_listing(store: ObjectStore) -> None:
    assert store.list_page("") == ListPage((), None)
    assert store.list_page("nothing/") == ListPage((), None)
    assert list(store.iter_keys("")) == []
    store.put_if_absent("some/key", b"v")
    assert store.list_page("nothing/") == ListPage((), None)
    assert store.list_page("some/key/") == ListPage((), None)


def test_listing_order_with_punctuation_before_slash(store: ObjectStore, kind: str) -> None:
    # '+', ',', '-' and '.' sort before '/', so plain string order is not folder-walk order.
    keys = ["p/a+", "p/a-c", "p/a.b", "p/a/b", "p/a/c-d", "p/ab", "p/a,z/q"]
    for key in keys:
        store.put_if_absent(key, b"v")
    listed = [key for page in _pages(store, "p/", 2) for key in page]
    assert sorted(listed) == sorted(keys)  # every store: each key exactly once
    if kind != "s3":
        assert listed == sorted(keys)
    # SeaweedFS lists in folder-walk order ('p/a/b' before 'p/a+'), unlike AWS and MinIO;
    # its pagination is still complete because tokens are always real keys.


def _pages(store: ObjectStore, prefix: str, limit: int) -> list[tuple[str, ...]]:
    pages: list[tuple[str, ...]] = []
    start_after = ""
    while True:
        page = store.list_page(prefix, start_after=start_after, limit=limit)
        pages.append(page.keys)
        if page.next_start_after is None:
            return pages
        start_after = page.next_start_after


# -- invalid keys ----------------------------------------------------------------------------

INVALID_KEYS = ["../x", "/abs", "a//b", "a/./b", ".hidden", "x\\y", "k" * 2000, "a\x00b", "a\nb"]

METHODS: dict[str, Callable[[ObjectStore, str, Path], Any]] = {
    "put_if_absent": lambda s, k, p: s.put_if_absent(k, b"data"),
    "put_file_if_absent": lambda s, k, p: s.put_file_if_absent(k, p),
    "get": lambda s, k, p: s.get(k),
    "get-max-bytes": lambda s, k, p: s.get(k, max_bytes=1),
    "get_to_file": lambda s, k, p: s.get_to_file(k, p),
    "exists": lambda s, k, p: s.exists(k),
    "stat": lambda s, k, p: s.stat(k),
    "delete": lambda s, k, p: s.delete(k),
    "list_page": lambda s, k, p: s.list_page(k),
    "list_page-start_after": lambda s, k, p: s.list_page("", start_after=k),
    "iter_keys": lambda s, k, p: s.iter_keys(k),  # refused at the call, before iterating
}


@pytest.mark.parametrize("method", METHODS)
def test_invalid_keys_are_refused_by_every_method(
    store: ObjectStore, method: str, tmp_path: Path
) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"data")
    for key in INVALID_KEYS:
        with pytest.raises(InvalidKeyError) as info:
            METHODS[method](store, key, path)
        assert repr(key) in str(info.value), (method, key)
    assert path.read_bytes() == b"data"


def test_invalid_keys_write_nothing(store: ObjectStore, tmp_path: Path) -> None:
    for key in INVALID_KEYS:
        with pytest.raises(InvalidKeyError):
            store.put_if_absent(key, b"data")
    assert list(store.iter_keys("")) == []
    if isinstance(store, FilesystemObjectStore):
        outside = sorted(p.name for p in tmp_path.iterdir())
        assert outside == ["store"]


# -- keys that are also folders --------------------------------------------------------------


def test_a_key_that_is_a_folder_of_other_keys_is_refused(store: ObjectStore) -> None:
    store.put_if_absent("x/y/z", b"inside")
    with pytest.raises(StorageError, match=r"'x/y'.*conflicts") as info:
        store.put_if_absent("x/y", b"outer")
    assert not isinstance(info.value, ObjectNotFoundError)
    assert store.exists("x/y") is False
    assert store.get("x/y/z") == b"inside"


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
def test_a_key_inside_an_object_is_refused(store: ObjectStore) -> None:
    # S3 allows 'c/d' beside 'c/d/e'; a directory tree cannot, so the fake refuses it too.
    store.put_if_absent("c/d", b"object")
    with pytest.raises(StorageError, match=r"'c/d/e'.*'c/d'"):
        store.put_if_absent("c/d/e", b"inner")
    assert list(store.iter_keys("")) == ["c/d"]


# -- filesystem specifics --------------------------------------------------------------------


def test_filesystem_keeps_temp_files_out_of_listings(tmp_path: Path) -> None:
    fs = FilesystemObjectStore(tmp_path)
    fs.put_if_absent("a/b", b"x")
    (tmp_path / ".tmp" / "leftover").write_bytes(b"junk")
    (tmp_path / "a" / ".dotfile").write_bytes(b"junk")
    (tmp_path / "a" / "bad name").write_bytes(b"junk")
    assert list(fs.iter_keys("")) == ["a/b"]
    assert sorted(os.listdir(tmp_path / ".tmp")) == ["leftover"]


def test_filesystem_delete_prunes_empty_folders(tmp_path: Path) -> None:
    fs = FilesystemObjectStore(tmp_path)
    fs.put_if_absent("r/h/one", b"1")
    fs.put_if_absent("r/g/deep/two", b"2")
    assert fs.delete("r/g/deep/two")
    assert sorted(os.listdir(tmp_path / "r")) == ["h"]
    assert fs.delete("r/h/one")
    assert sorted(os.listdir(tmp_path)) == [".tmp"]


def test_filesystem_never_follows_symlinks_inside_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"do not read")
    fs = FilesystemObjectStore(root)
    fs.put_if_absent("ok/file", b"fine")
    (root / "link").symlink_to(outside)
    (root / "ok" / "filelink").symlink_to(outside / "secret")

    assert fs.exists("link/secret") is False
    with pytest.raises(ObjectNotFoundError):
        fs.get("link/secret")
    with pytest.raises(ObjectNotFoundError):
        fs.get("ok/filelink")
    assert fs.exists("ok/filelink") is False
    assert list(fs.iter_keys("")) == ["ok/file"]
    assert fs.delete("link/secret") is False
    assert fs.delete("ok/filelink") is False
    with pytest.raises(StorageError, match="'link/new'"):
        fs.put_if_absent("link/new", b"escape")
    with pytest.raises(StorageError, match="'ok/filelink'"):
        fs.put_if_absent("ok/filelink", b"overwrite")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"do not read"


def test_filesystem_refuses_a_symlinked_temp_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    fs = FilesystemObjectStore(root)
    os.rmdir(root / ".tmp")
    (root / ".tmp").symlink_to(outside)
    with pytest.raises(StorageError):
        fs.put_if_absent("k", b"data")
    assert os.listdir(outside) == []


def test_filesystem_survives_an_empty_folder_where_an_object_goes(tmp_path: Path) -> None:
    fs = FilesystemObjectStore(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)  # e.g. left by an interrupted writer
    assert fs.put_if_absent("a/b", b"object") is True
    assert fs.get("a/b") == b"object"


def test_filesystem_writes_survive_concurrent_pruning(tmp_path: Path) -> None:
    # Deleting the last key of a folder prunes it while other threads write into it.
    fs = FilesystemObjectStore(tmp_path)
    errors: list[BaseException] = []

    def churn(thread: int) -> None:
        try:
            for i in range(100):
                key = f"race/shared/{thread}-{i}"
                assert fs.put_if_absent(key, b"v") is True
                assert fs.get(key) == b"v"
                assert fs.delete(key) is True
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert list(fs.iter_keys("")) == []
    assert sorted(os.listdir(tmp_path)) == [".tmp"]


def test_filesystem_racing_processes_write_once(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_put_from_process, [(str(tmp_path), i) for i in range(8)])
    assert sorted(results) == [False] * 7 + [True]
    assert os.listdir(tmp_path / ".tmp") == []


def _put_from_process(root: str, index: int) -> bool:
    return FilesystemObjectStore(root).put_if_absent("race/k", b"process %d" % index)


# -- the fake and the filesystem store agree -------------------------------------------------

PARTS = ["a", "b", "a-b", "ab", "a.b"]
KEYS = sorted(
    {*PARTS}
    | {f"{x}/{y}" for x in PARTS for y in PARTS[:3]}
    | {f"{x}/{y}/{z}" for x in PARTS[:2] for y in PARTS[:2] for z in PARTS[:3]}
)
PREFIXES = ["", "a", "a/", "a/a", "a-", "b/a/", "ab", *KEYS[::3]]


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except StorageError as exc:
        return ("error", type(exc).__name__)


class StoresAgree(RuleBasedStateMachine):
    """Runs every operation on the memory and the filesystem store and compares results."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="fz-agree-"))
        self.memory = MemoryObjectStore()
        self.disk = FilesystemObjectStore(self.dir / "store")

    def both(self, call: Callable[[ObjectStore], Any]) -> Any:
        expected = _outcome(lambda: call(self.memory))
        actual = _outcome(lambda: call(self.disk))
        assert actual == expected
        return expected

    @rule(key=st.sampled_from(KEYS), data=st.binary(max_size=8))
    def put(self, key: str, data: bytes) -> None:
        self.both(lambda s: s.put_if_absent(key, data))

    @rule(key=st.sampled_from(KEYS), data=st.binary(max_size=8))
    def put_file(self, key: str, data: bytes) -> None:
        source = self.dir / "source"
        source.write_bytes(data)
        self.both(lambda s: s.put_file_if_absent(key, source))

    @rule(key=st.sampled_from(KEYS), max_bytes=st.none() | st.integers(0, 9))
    def get(self, key: str, max_bytes: int | None) -> None:
        self.both(lambda s: s.get(key, max_bytes=max_bytes))

    @rule(key=st.sampled_from(KEYS))
    def get_to_file(self, key: str) -> None:
        def call(s: ObjectStore) -> tuple[int, bytes]:
            target = self.dir / "target"
            size = s.get_to_file(key, target)
            return size, target.read_bytes()

        self.both(call)

    @rule(key=st.sampled_from(KEYS))
    def exists_and_stat(self, key: str) -> None:
        self.both(lambda s: s.exists(key))
        self.both(lambda s: s.stat(key))

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        self.both(lambda s: s.delete(key))

    @rule(
        prefix=st.sampled_from(PREFIXES),
        start_after=st.sampled_from(["", "a/", "a-b", *KEYS[::2]]),
        limit=st.integers(1, 4),
    )
    def list_page(self, prefix: str, start_after: str, limit: int) -> None:
        self.both(lambda s: s.list_page(prefix, start_after=start_after, limit=limit))

    @invariant()
    def same_keys_in_order(self) -> None:
        keys = self.both(lambda s: list(s.iter_keys("")))
        assert keys[1] == sorted(keys[1])

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


TestStoresAgree = StoresAgree.TestCase
TestStoresAgree.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
