"""A campaign's report in every format, from the store: HTML folder, JSON, Markdown, SARIF."""

from __future__ import annotations

import enum
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.registry import Registry
from orchestrator.reports.html import summary_json, write_static_report
from orchestrator.reports.markdown import markdown_report
from orchestrator.reports.sarif import sarif_report
from orchestrator.store import repos
from orchestrator.store.campaigns import get_campaign
from orchestrator.store.database import Database
from orchestrator.ui.model import campaign_page, crash_page, frames_of
from orchestrator.views import campaign_summary
from workers.errors import WorkerError
from workers.storage.base import ObjectStore

MAX_TESTCASE_FILE = 16 * 1024 * 1024


class ReportFormat(enum.StrEnum):
    """The formats of ``fuzzorch report`` and the report route."""

    HTML = "html"
    JSON = "json"
    MD = "md"
    SARIF = "sarif"


def tool_version() -> str:
    """fuzzorch's version, for SARIF."""
    try:
        return str(metadata.version("fuzzorch"))
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed here
        return "0"


def export(
    database: Database,
    registry: Registry,
    campaign_id: str,
    fmt: ReportFormat,
    *,
    report: str | None,
) -> str:
    """A campaign's report as JSON, Markdown or SARIF text."""
    with database.transaction() as conn:
        record = get_campaign(conn, campaign_id)
    summary = campaign_summary(database, registry, record, report=report)
    return _export_text(database, summary, fmt, report=report)


def write_report(
    database: Database, registry: Registry, objects: ObjectStore, campaign_id: str, folder: Path
) -> tuple[Path, dict[str, Any]]:
    """Write the campaign's report folder; return its index and the JSON summary."""
    index = folder / "index.html"
    page = campaign_page(database, registry, campaign_id, report=str(index))
    crashes: dict[str, dict[str, Any]] = {}
    testcases: dict[str, bytes] = {}
    for crash in page["crashes"]:
        detail = crash_page(database, registry, objects, crash["id"])
        crashes[crash["id"]] = detail
        for name, key in (("testcase", detail["testcase"]), ("minimized", detail["minimized"])):
            if key and not key.get("missing"):
                try:
                    data = objects.get(key["key"], max_bytes=MAX_TESTCASE_FILE)
                except (WorkerError, LookupError):
                    continue
                testcases[f"{name}-{crash['id']}.bin"] = data
    summary = page["s"]
    exports = {
        "summary.json": summary_json(summary),
        "summary.md": _export_text(database, summary, ReportFormat.MD, report=str(index)),
        "report.sarif": _export_text(database, summary, ReportFormat.SARIF, report=str(index)),
    }
    return write_static_report(folder, page, crashes, testcases, exports), summary


def _export_text(
    database: Database, summary: dict[str, Any], fmt: ReportFormat, *, report: str | None
) -> str:
    if fmt is ReportFormat.JSON:
        return summary_json(summary)
    if fmt is ReportFormat.MD:
        # A comment on a pull request can only link to a web address, not to a local file.
        web = report if report and report.startswith(("https://", "http://")) else None
        return markdown_report(summary, report_url=web)
    if fmt is ReportFormat.SARIF:
        with database.transaction() as conn:
            source = repos.get_repo(conn, summary["campaign"]["repo"]).source
            stacks = {c["id"]: frames_of(conn, c["id"]) for c in summary["crashes"]}
        # SRCROOT needs a URI: a web URL or a local path; an scp-like ssh source is neither.
        uri = source if source.startswith(("https://", "http://", "/")) else None
        document = sarif_report(summary, stacks, tool_version=tool_version(), repo_uri=uri)
        return json.dumps(document, indent=2) + "\n"
    raise ValueError(f"{fmt.value!r} is not a text export (html is a folder)")
