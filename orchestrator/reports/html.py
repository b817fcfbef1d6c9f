"""HTML rendering: the same Jinja2 templates make the server's pages and the static reports.

Crash data is attacker-controlled: Jinja2 autoescapes everything, no template marks crash
data safe (plots are embedded as ``data:`` images, never as markup), and every page carries
a Content-Security-Policy that allows no script at all.

A static report is a folder: ``index.html`` (the campaign), ``crash-<id>.html`` per crash
group with its testcases beside it, ``style.css``, and the exports (``summary.json``,
``summary.md``, ``report.sarif``).
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'"
)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@dataclass(frozen=True)
class Urls:
    """Where a page's links point: the server's routes, or a static report's files."""

    home: str
    css: str
    login: str
    logout: str
    crash: Callable[[str], str]
    campaign: Callable[[str], str]
    repo: Callable[[str], str]
    testcase: Callable[[str, bool], str]
    crash_action: Callable[[str, str], str]
    exports: Callable[[str], list[tuple[str, str]]]


SERVER_URLS = Urls(
    home="/",
    css="/static/style.css",
    login="/login",
    logout="/logout",
    crash=lambda gid: f"/crashes/{_q(gid)}",
    campaign=lambda cid: f"/campaigns/{_q(cid)}",
    repo=lambda name: f"/repos/{_q(name)}",
    testcase=lambda gid, minimized: (
        f"/api/v1/crashes/{_q(gid)}/testcase?minimized={'true' if minimized else 'false'}"
    ),
    crash_action=lambda gid, action: f"/crashes/{_q(gid)}/{_q(action)}",
    exports=lambda cid: [
        (fmt, f"/api/v1/campaigns/{_q(cid)}/report?format={fmt}") for fmt in ("json", "md", "sarif")
    ],
)


def static_urls(campaign_id: str) -> Urls:
    """Links inside a static report folder (sibling campaigns are sibling folders)."""
    return Urls(
        home="index.html",
        css="style.css",
        login="index.html",
        logout="index.html",
        crash=lambda gid: f"crash-{_q(gid)}.html",
        campaign=lambda cid: "index.html" if cid == campaign_id else f"../{_q(cid)}/index.html",
        repo=lambda _name: "index.html",
        testcase=lambda gid, minimized: f"{'minimized' if minimized else 'testcase'}-{_q(gid)}.bin",
        crash_action=lambda _gid, _action: "index.html",
        exports=lambda _cid: [("json", "summary.json"), ("md", "summary.md"),
                              ("sarif", "report.sarif")],
    )  # fmt: skip


def render(template: str, *, urls: Urls, **context: Any) -> str:
    """A page, escaped throughout."""
    base: dict[str, Any] = {
        "csp": CSP, "u": urls, "who": None, "csrf": None, "refresh": None, "actions": False,
        "notice": None, "error": None,
    }  # fmt: skip
    return _environment.get_template(template).render(**{**base, **context})


def write_static_report(
    folder: Path,
    campaign: Mapping[str, Any],
    crashes: Mapping[str, Mapping[str, Any]],
    testcases: Mapping[str, bytes],
    exports: Mapping[str, str],
) -> Path:
    """Write a report folder; return the path of its ``index.html``.

    ``campaign`` is the campaign page's model, ``crashes`` each crash page's model by
    group id, ``testcases`` file name -> bytes, ``exports`` file name -> text.
    """
    folder.mkdir(parents=True, exist_ok=True)
    urls = static_urls(str(campaign["s"]["campaign"]["id"]))
    _write(folder / "index.html", render("campaign.html", urls=urls, p=campaign))
    for group_id, page in crashes.items():
        _write(folder / f"crash-{_q(group_id)}.html", render("crash.html", urls=urls, p=page))
    for name, data in testcases.items():
        (folder / name).write_bytes(data)
    shutil.copyfile(TEMPLATES / "style.css", folder / "style.css")
    for name, text in exports.items():
        _write(folder / name, text)
    return folder / "index.html"


def _write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def summary_json(summary: Mapping[str, Any]) -> str:
    """The JSON export."""
    return json.dumps(summary, indent=2) + "\n"
