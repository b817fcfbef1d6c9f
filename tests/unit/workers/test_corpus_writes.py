"""Two jobs writing the same corpus unit at once must both succeed (they used to race)."""

from __future__ import annotations

import threading
from pathlib import Path

from harnesses.identity import content_id
from workers.corpus import upload_folder
from workers.storage.memory import MemoryObjectStore


def test_racing_uploads_into_one_corpus_folder_never_fail(tmp_path: Path) -> None:
    units = [f"unit-{i}".encode() for i in range(200)]
    sources = []
    for side in ("a", "b"):
        folder = tmp_path / side
        folder.mkdir()
        for data in units:
            (folder / content_id(data)).write_bytes(data)
        sources.append(folder)
    shared = tmp_path / "corpus"
    shared.mkdir()
    store = MemoryObjectStore()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def upload(folder: Path) -> None:
        barrier.wait()
        try:
            upload_folder(store, "corpus/r/0123456789abcdef/", folder, into=shared)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(f,)) for f in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in shared.iterdir()) == sorted(content_id(u) for u in units)
