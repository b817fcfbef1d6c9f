"""The campaign report as a static HTML folder: ``index.html``, ``style.css``, ``summary.json``.

Crash data is attacker-controlled: Jinja2 autoescapes everything, no template marks crash
data safe, and the page carries a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_report(summary: dict[str, Any]) -> str:
    """The report's page, escaped throughout."""
    return _environment.get_template("campaign.html").render(s=summary, csp=CSP)


def write_report(summary: dict[str, Any], folder: Path) -> Path:
    """Write the report into ``folder``; return the path of its ``index.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    page = render_report(summary)
    index = folder / "index.html"
    partial = folder / ".index.html.partial"
    partial.write_text(page, encoding="utf-8")
    partial.replace(index)
    shutil.copyfile(TEMPLATES / "style.css", folder / "style.css")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return index
