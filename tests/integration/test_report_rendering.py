"""Reports rendered from a store holding hostile crash data: HTML and script in messages,
titles, harness names and paths, invalid UTF-8 in testcases, a megabyte message. Every page
stays escaped and bounded, on the static report and the server's pages alike."""

from __future__ import annotations

import re
import time
from pathlib import Path

from orchestrator.registry import Registry
from orchestrator.reports.build import write_report
from orchestrator.reports.html import SERVER_URLS, render
from orchestrator.store.campaigns import CampaignStatus, FailOn, create_campaign, transition
from orchestrator.store.crashes import Sighting, record_sighting
from orchestrator.store.database import Database
from orchestrator.ui.model import campaign_page, crash_page, dashboard
from tests.support import fixture_repos
from workers.contract import CrashReport, Frame
from workers.git import Git
from workers.storage.memory import MemoryObjectStore

SCRIPT = "<script>alert('x')</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
MEGA = ("A" * 1000 + SCRIPT) * 1000


def _hostile_store(tmp_path: Path) -> tuple[Database, Registry, MemoryObjectStore, str]:
    database = Database.open(f"sqlite:///{tmp_path / 'r.db'}", upgrade=True)
    objects = MemoryObjectStore()
    registry = Registry(database, objects, Git(allow_local=True), tmp_path / "git",
                        allow_local=True, clock=time.time)  # fmt: skip
    harness = f"fuzz/{SCRIPT}.py"
    commit = registry.add(str(fixture_repos.mixed_tests(tmp_path).path), name="calc").repo
    head = commit.head_commit or ""
    with database.transaction() as conn:
        create_campaign(
            conn, campaign_id="cmp-h", repo="calc", branch=f"release/{ATTRIBUTE}",
            commit=head, duration_s=60, workers=1, fail_on=FailOn.OPEN, now=1.0,
        )  # fmt: skip
        transition(conn, "cmp-h", from_=(CampaignStatus.QUEUED,), to=CampaignStatus.RUNNING,
                   now=1.0)  # fmt: skip
        group, _ = record_sighting(
            conn,
            CrashReport(
                signature="d" * 40, canonical=f"exception|{ATTRIBUTE}|{SCRIPT}||",
                kind="exception", exception_type=ATTRIBUTE, message=MEGA,
                title=f"{ATTRIBUTE} in {SCRIPT}", frames=(f"{SCRIPT}.py:{ATTRIBUTE}",),
                stack=(Frame(f"pkg/{SCRIPT}.py", ATTRIBUTE, 3), Frame("/usr/lib/x.py", "f", 1)),
                testcase_key="crashes/calc/0123456789abcdef/" + "e" * 40, found_after_s=2.0,
            ),
            Sighting("calc", "cmp-h", "job-1", 1, head, harness, 2.0, now=2.0),
        )  # fmt: skip
    # Invalid UTF-8 and markup in the testcase itself.
    objects.put_if_absent("crashes/calc/0123456789abcdef/" + "e" * 40,
                          b"\xff\xfe<script>\x00\x80" + SCRIPT.encode())  # fmt: skip
    return database, registry, objects, group


def _assert_escaped(page: str) -> None:
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")  # only as text
    assert "&lt;script&gt;" in page


def test_static_report_pages_escape_hostile_crash_data_and_stay_bounded(tmp_path: Path) -> None:
    database, registry, objects, group = _hostile_store(tmp_path)
    index, summary = write_report(database, registry, objects, "cmp-h", tmp_path / "out")
    campaign = index.read_text()
    crash = (tmp_path / "out" / f"crash-{group}.html").read_text()
    for page in (campaign, crash):
        _assert_escaped(page)
    assert len(campaign) < 200_000  # the megabyte message is cut in the table
    assert len(crash) < 200_000
    # The testcase preview shows bytes, escaped; the download is the exact bytes.
    assert "ff fe 3c 73" in crash
    assert (tmp_path / "out" / f"testcase-{group}.bin").read_bytes().startswith(b"\xff\xfe<script>")
    # Exports: the Markdown carries no raw markup; the JSON keeps the data as data.
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "<" not in markdown.replace("&lt;", "")
    assert summary["crashes"][0]["exception_type"] == ATTRIBUTE
    database.dispose()


def test_server_pages_escape_hostile_crash_data(tmp_path: Path) -> None:
    database, registry, objects, group = _hostile_store(tmp_path)
    who = {"name": SCRIPT, "role": "triager"}
    pages = [
        render("dashboard.html", urls=SERVER_URLS, who=who, csrf="c", d=dashboard(database)),
        render("campaign.html", urls=SERVER_URLS, who=who, csrf="c", refresh=5,
               p=campaign_page(database, registry, "cmp-h", report=None)),
        render("crash.html", urls=SERVER_URLS, who=who, csrf="c", actions=True,
               notice=SCRIPT, p=crash_page(database, registry, objects, group)),
    ]  # fmt: skip
    for page in pages:
        _assert_escaped(page)
        # Every page forbids scripts outright.
        assert re.search(r'Content-Security-Policy" content="default-src &#39;none&#39;', page)
    assert 'http-equiv="refresh"' in pages[1]  # a running campaign's page refreshes itself
    database.dispose()
