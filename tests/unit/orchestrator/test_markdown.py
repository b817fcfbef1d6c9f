"""Markdown pull-request comment: content, escaping of hostile text, and the size bound.

The escaping is checked by rendering with a CommonMark parser with GFM tables
(markdown-it-py, which rich already depends on) and reading the HTML it makes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from orchestrator.reports.markdown import markdown_report

COMMIT = "0123456789abcdef0123456789abcdef01234567"
INTRODUCED = "1111111111111111111111111111111111111111"
FIXED = "2222222222222222222222222222222222222222"
ZWJ = "\u200d"
BLANK = "\u2013"  # what a missing value shows
REPORT = "https://fuzz.example.com/campaigns/c-42/"
GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def crash(**changes: Any) -> dict[str, Any]:
    """A crash group as the summary carries it."""
    return {
        "id": "g-1",
        "signature": "a" * 40,
        "title": "IndexError in unescape (pkg/parser.py)",
        "kind": "exception",
        "exception_type": "IndexError",
        "message": "string index out of range\nsecond line",
        "frames": ["pkg/parser.py:unescape"],
        "harness": "fuzz/fuzz_parse.py",
        "new": True,
        "status": "open",
        "found_after_s": 75.2,
        "reliability": 0.9,
        "introduced": {"commit": INTRODUCED, "last_good": COMMIT, "confidence": "high"},
        "fixed": None,
        "blame": None,
        "testcase": "crashes/demo/x/" + "e" * 40,
        "minimized": None,
    } | changes


def harness(**changes: Any) -> dict[str, Any]:
    """A harness entry of the summary."""
    return {
        "name": "fuzz/fuzz_parse.py",
        "kind": "atheris",
        "execs": 1_234_567,
        "exec_per_s": 2057.6,
        "coverage": 812,
        "corpus_size": 90,
        "crashes": 2,
        "status": "crashed",
    } | changes


def summary(crashes: list[Any], harnesses: list[Any] | None = None) -> dict[str, Any]:
    """A schema-1 summary."""
    return {
        "schema": 1,
        "campaign": {
            "id": "c-42",
            "repo": "demo",
            "branch": "release/1.2",
            "commit": COMMIT,
            "status": "done",
            "started_at": "2024-05-01T10:00:00+00:00",
            "finished_at": "2024-05-01T10:20:05+00:00",
        },
        "harnesses": harnesses if harnesses is not None else [harness()],
        "crashes": crashes,
        "report": None,
    }


class _Page(HTMLParser):
    """What a reader sees: the tags, the table cells and the links of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in {"td", "th"}:
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page(markdown: str) -> _Page:
    """``markdown`` rendered and parsed back."""
    parsed = _Page()
    parsed.feed(GFM.render(markdown))
    parsed.close()
    return parsed


def visible(text: str) -> str:
    """What a reader should see of ``text``: one line, without invisible characters."""
    return " ".join(re.sub(r"[\u200b\u202c\u202e]", "", text).split())


def size(text: str) -> int:
    """UTF-16 code units, as the bound counts them."""
    return len(text.encode("utf-16-le")) // 2


def test_a_normal_summary_reads_as_a_report() -> None:
    crashes = [
        crash(
            id="g-fixed",
            status="fixed",
            new=False,
            found_after_s=None,
            fixed={"commit": FIXED},
            title="KeyError in load (pkg/cfg.py)",
            message=None,
        ),
        crash(),
        crash(
            id="g-flaky",
            status="flaky",
            new=False,
            reliability=0.25,
            introduced=None,
            title="Timeout in fuzz/fuzz_slow.py",
            kind="timeout",
            message=None,
            found_after_s=4000,
        ),
    ]
    text = markdown_report(summary(crashes), report_url=REPORT)
    lines = text.splitlines()
    assert lines[0] == "### fuzzorch: 1 new, 1 open, 1 fixed, 1 flaky crash groups"
    assert lines[2] == (
        "Campaign c-42 on **demo**, branch **release/1.2** at 0123456789ab · 20 min 05 s · done"
    )
    rendered = page(text)
    crash_table, harness_table = rendered.rows[:4], rendered.rows[4:]
    assert crash_table == [
        ["status", "crash group", "harness", "reliability", "introduced", "fixed", "found after"],
        [
            "open, new",
            "IndexError in unescape (pkg/parser.py): string index out of range",
            "fuzz/fuzz_parse.py",
            "90 %",
            "111111111111",
            BLANK,
            "1 min 15 s",
        ],
        [
            "flaky",
            "Timeout in fuzz/fuzz_slow.py",
            "fuzz/fuzz_parse.py",
            "25 %",
            BLANK,
            BLANK,
            "1 h 06 min",
        ],
        [
            "fixed",
            "KeyError in load (pkg/cfg.py)",
            "fuzz/fuzz_parse.py",
            "90 %",
            "111111111111",
            "222222222222",
            "re-checked",
        ],
    ]
    assert harness_table == [
        ["harness", "kind", "execs", "exec/s", "coverage", "crashes", "status"],
        ["fuzz/fuzz_parse.py", "atheris", "1,234,567", "2,058", "812", "2", "crashed"],
    ]
    assert rendered.links == [REPORT]
    assert lines[-1] == f"[Full report]({REPORT})"


def test_no_crashes_and_no_report_link() -> None:
    text = markdown_report(summary([], harnesses=[]))
    assert text.splitlines()[0] == "### fuzzorch: 0 new, 0 open, 0 fixed, 0 flaky crash groups"
    assert "No crash groups." in text
    assert "Harnesses" not in text
    assert page(text).links == []


HOSTILE_TITLES = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "click [here](http://evil.example) or ](http://evil)",
    "![x](http://evil.example/pixel.png)",
    "| col | col | col |",
    "@admins please look, cc @org/security-team",
    "``code` span with `` backticks",
    "# heading",
    "line one\n# heading\n\n| a | b |\n|---|---|",
    "**bold** _em_ ~~strike~~ $x^2$ \\| escaped pipe \\",
    "see #123 and GH-45, mail a@b.example, www.evil.example, https://evil.example/x",
    "[ref]: http://evil.example\n[ref]",
    "&lt;script&gt; &#124; &amp;",
    "right-to-left \u202eevil\u202c and zero\u200bwidth",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_text_renders_as_the_text_it_is(title: str) -> None:
    group = crash(title=title, message=title, harness=title)
    hostile = summary([group], harnesses=[harness(name=title, kind=title, status=title)])
    hostile["campaign"] |= {"id": title, "repo": title, "branch": title, "status": title}
    text = markdown_report(hostile)
    rendered = page(text)
    # Only the page's own structure: headings, paragraphs, emphasis, the two tables.
    assert set(rendered.tags) <= {
        "h3",
        "h4",
        "p",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
    assert rendered.links == []
    assert "<" not in text
    assert all(line.startswith(("### ", "#### ")) for line in text.splitlines() if "#" in line[:1])
    assert re.search(r"@(?!\u200d)\w", text) is None
    crash_row, harness_row = rendered.rows[1], rendered.rows[3]
    assert len(crash_row) == 7
    assert len(harness_row) == 7
    # What the reader sees is the input on one line, less invisible characters, plus joiners.
    shown, first_line = (visible(t) for t in (title, title.splitlines()[0]))
    assert crash_row[2].replace(ZWJ, "") == shown
    assert harness_row[0].replace(ZWJ, "") == shown
    assert crash_row[1].replace(ZWJ, "") == f"{shown}: {first_line}"


def test_a_mention_cannot_ping() -> None:
    text = markdown_report(summary([crash(title="@admins @octocat/team")]))
    assert "@admins" not in text
    assert "@octocat" not in text
    assert f"@{ZWJ}admins" in text


def test_ten_thousand_groups_fit_with_a_note_of_what_was_left_out() -> None:
    crashes = [crash(id=f"g-{i}", title=f"IndexError number {i}") for i in range(10_000)]
    text = markdown_report(summary(crashes), report_url=REPORT)
    assert size(text) <= 60_000
    note = re.search(r"^… (\d+) more crash groups \(see the full report\)$", text, re.M)
    assert note is not None
    rendered = page(text)
    shown = [row for row in rendered.rows[1:] if row[1].startswith("IndexError number")]
    assert len(shown) + int(note[1]) == 10_000
    assert [row[1].split(":")[0] for row in shown[:2]] == [
        "IndexError number 0",
        "IndexError number 1",
    ]
    assert rendered.links == [REPORT]  # the link survives the cut
    assert text.splitlines()[-1] == f"[Full report]({REPORT})"


def test_open_and_new_groups_are_listed_before_the_cut() -> None:
    crashes = [crash(id=f"f-{i}", status="fixed", new=False) for i in range(2000)]
    crashes.append(crash(id="the-open-one", title="StillOpenError", status="open"))
    text = markdown_report(summary(crashes), max_chars=5_000)
    assert "StillOpenError" in text
    assert size(text) <= 5_000


def test_a_megabyte_message_is_bounded() -> None:
    text = markdown_report(summary([crash(title="T" * 1_000_000, message="M" * 1_000_000)]))
    assert size(text) < 2_000
    assert "…" in text


def test_the_bound_counts_utf16_code_units() -> None:
    crashes = [crash(id=f"g-{i}", title="😀" * 150) for i in range(500)]
    text = markdown_report(summary(crashes), max_chars=10_000)
    assert size(text) <= 10_000
    assert len(text) < size(text)


def test_a_tiny_bound_drops_harness_rows_too() -> None:
    harnesses = [harness(name=f"fuzz/h{i}.py") for i in range(40)]
    text = markdown_report(summary([crash()] * 5, harnesses), max_chars=700)
    assert size(text) <= 700
    assert "more crash groups" in text
    assert re.search(r"^… \d+ more harness(es)?$", text, re.M)


def test_at_most_fifty_harness_rows() -> None:
    harnesses = [harness(name=f"fuzz/h{i}.py") for i in range(60)]
    text = markdown_report(summary([], harnesses))
    assert "#### Harnesses (60)" in text
    assert "… 10 more harnesses" in text
    assert len(page(text).rows) == 51


@pytest.mark.parametrize("max_chars", [0, 199, -5])
def test_a_bound_too_small_for_a_report_is_refused(max_chars: int) -> None:
    with pytest.raises(ValueError, match=rf"max_chars must be at least 200, not {max_chars}"):
        markdown_report(summary([]), max_chars=max_chars)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "https://x/a b", "https://x/)(", "https://x/<y>", "/relative"]
)
def test_a_report_url_that_could_break_the_link_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="report_url") as caught:
        markdown_report(summary([]), report_url=url)
    assert repr(url) in str(caught.value)


def test_odd_values_are_blank_not_errors() -> None:
    odd = crash(
        status=None,
        new="yes",
        reliability=float("nan"),
        found_after_s=-1,
        introduced={"commit": "HEAD"},
        fixed=["x"],
        title=None,
        message=7,
        harness={},
    )
    odd_harness = harness(
        execs=10**30, exec_per_s=float("inf"), coverage=True, crashes=-1, name=None
    )
    document: dict[str, Any] = {
        "campaign": {"commit": "abc", "started_at": "yesterday", "finished_at": "2024"},
        "crashes": [odd, None, "x", {}],
        "harnesses": [odd_harness, 3],
    }
    text = markdown_report(document)
    rendered = page(text)
    assert rendered.rows[1] == [BLANK] * 7
    assert rendered.rows[4] == [BLANK, "atheris", BLANK, BLANK, BLANK, BLANK, "crashed"]
    assert (
        f"Campaign {BLANK} on **{BLANK}**, branch **{BLANK}** at {BLANK} · {BLANK} · {BLANK}"
        in text
    )
    assert markdown_report("not a summary").startswith("### fuzzorch: 0 new")  # type: ignore[arg-type]


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.text(alphabet="<>&[]()!|`*_~#@:/\\.-\n $^w", max_size=60),
    st.sampled_from(["open", "fixed", "flaky", "2024-05-01T10:00:00+00:00", COMMIT]),
)
_entry = st.dictionaries(
    st.sampled_from([*crash(), *harness()]), _scalars | st.lists(_scalars, max_size=2), max_size=14
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    crashes=st.lists(_entry | _scalars, max_size=30),
    harnesses=st.lists(_entry, max_size=5),
    campaign=st.dictionaries(
        st.sampled_from(["id", "repo", "branch", "commit", "status", "started_at", "finished_at"]),
        _scalars,
    ),
    max_chars=st.integers(min_value=200, max_value=4_000),
)
def test_any_summary_fits_and_lets_no_markup_through(
    crashes: list[Any], harnesses: list[Any], campaign: dict[str, Any], max_chars: int
) -> None:
    document = {"campaign": campaign, "crashes": crashes, "harnesses": harnesses}
    text = markdown_report(document, report_url=REPORT, max_chars=max_chars)
    assert size(text) <= max_chars
    assert "<" not in text
    rendered = page(text)
    assert set(rendered.links) <= {REPORT}
    assert all(len(row) == 7 for row in rendered.rows)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert all(re.match(r"### fuzzorch: |#### (Crash groups|Harnesses) \(", h) for h in headings)
