"""A testcase found while the object store is down is kept locally and arrives later."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.support.seaweed import running_seaweed
from workers.spool import Spool


def test_a_testcase_survives_an_s3_outage_and_arrives_later(tmp_path: Path) -> None:
    with running_seaweed() as server:
        store = server.info.store("spool-test", retries=1, timeout=2.0)
        spool = Spool(store, tmp_path / "spool")
        assert spool.put("crashes/r/0123456789abcdef/aaaa", b"first")
        server.stop()
        started = time.monotonic()
        assert not spool.put("crashes/r/0123456789abcdef/bbbb", b"while down")
        assert time.monotonic() - started < 20  # the job is not held up for the outage
        assert spool.pending() == ["crashes/r/0123456789abcdef/bbbb"]
        assert spool.flush() == 0  # still down: it stays
        # 20 s of outage, then the server comes back on the same ports and data.
        restart = threading.Timer(20.0, server.start)
        restart.start()
        restart.join()
        deadline = time.monotonic() + 60
        while spool.pending() and time.monotonic() < deadline:
            spool.flush()
            time.sleep(1)
        assert spool.pending() == []
        assert store.get("crashes/r/0123456789abcdef/bbbb") == b"while down"
        assert store.get("crashes/r/0123456789abcdef/aaaa") == b"first"
