"""The web UI in a real browser (Debian's chromium, headless, driven by Playwright): log in,
open a crash from the dashboard, change its status, and keep a screenshot as an artifact.

The crash's data is hostile (HTML and script in its title and message): the page must show
it as text, and the browser must never run a script (the CSP allows none).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from orchestrator.server.app import create_app
from orchestrator.store.campaigns import FailOn, create_campaign
from orchestrator.store.crashes import Sighting, record_sighting
from orchestrator.store.database import Database
from orchestrator.store.repos import add_repo
from tests.support.api import build_services
from workers.contract import CrashReport, Frame

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("FUZZORCH_TEST_ARTIFACTS", "test-artifacts"))
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """The app on a real port (SQLite store), with one campaign and one hostile crash."""
    database = Database.open(f"sqlite:///{tmp_path / 'ui.db'}", upgrade=True)
    services, secrets = build_services(tmp_path, database)
    with database.transaction() as conn:
        add_repo(conn, name="calc", source="https://github.com/team/calc.git",
                 default_branch="main", head_commit="a" * 40, now=1.0)  # fmt: skip
        create_campaign(
            conn, campaign_id="cmp-ui", repo="calc", branch="release/1.0", commit="a" * 40,
            duration_s=60, workers=1, fail_on=FailOn.OPEN, now=1.0,
        )  # fmt: skip
        group, _ = record_sighting(
            conn,
            CrashReport(
                signature="b" * 40, canonical="exception|IndexError|calc/parse.py:unescape||",
                kind="exception", exception_type="IndexError", message=HOSTILE,
                title=f"IndexError in unescape {HOSTILE}", frames=("calc/parse.py:unescape",),
                stack=(Frame("fuzz/fuzz_parse.py", "TestOneInput", 9),
                       Frame("calc/parse.py", "unescape", 8)),
                testcase_key="crashes/calc/0123456789abcdef/" + "c" * 40, found_after_s=1.5,
            ),
            Sighting("calc", "cmp-ui", "job-1", 1, "a" * 40, "fuzz/fuzz_parse.py", 1.5, now=2.0),
        )  # fmt: skip
    services.objects.put_if_absent("crashes/calc/0123456789abcdef/" + "c" * 40, b"a\\")
    port = _free_port()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}", secrets, group
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
        database.dispose()


def test_a_triager_logs_in_opens_a_crash_and_marks_it_wontfix(
    server: tuple[str, dict[str, str], str], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which("chromium") or Path(CHROMIUM).exists(), "chromium is not installed"
    base, secrets, group = server
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{base}/")
            assert page.url.endswith("/login")
            page.fill("#token", secrets["triager"])
            page.click("#login")
            page.wait_for_url(f"{base}/")
            assert "Dashboard" in page.content()
            page.click(f"a[href='/crashes/{group}']")
            page.wait_for_url(f"{base}/crashes/{group}")
            # The hostile title is text on the page, not markup; no script ran.
            assert HOSTILE in page.inner_text("h1")
            assert page.title() != "pwned"
            page.select_option("#status", "wontfix")
            page.click("#save-status")
            page.wait_for_url(f"{base}/crashes/{group}?*")
            assert "Status saved: wontfix." in page.inner_text("[role=status]")
            assert "wontfix" in page.inner_text("header")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "web-ui-crash-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert dialogs == []  # onerror=alert(1) never fired
