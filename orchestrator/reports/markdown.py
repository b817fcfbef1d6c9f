"""The campaign summary as a Markdown comment for a GitHub pull request or issue.

Pure: a summary (DESIGN.md, "JSON summary") in, GitHub-flavoured Markdown out, never longer
than ``max_chars`` (GitHub refuses a comment over 65,536 characters).

Every text in a summary came out of fuzzed code. It is rendered as one line of inert text:
control and invisible characters go, newlines collapse, and each character that could open
Markdown or HTML syntax is escaped (``< > &`` as entities, ``[ ] ` * _ ~ | \\ $ ^`` with
a backslash), so no title can make a link, an image, a tag, a code span, math or a table
cell. What GitHub links after rendering (``@mentions``, ``#123``, ``GH-123``, bare URLs,
e-mail addresses) is broken up with a zero-width joiner, so a crash cannot ping a team.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_MIN_CHARS = 200
_MAX_HARNESS_ROWS = 50
_TITLE_LIMIT = 160
_MESSAGE_LIMIT = 160
_NAME_LIMIT = 120
_MAX_COUNT = 10**18

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Invisible format characters (bidi overrides, zero-width characters, Unicode tags) make a
# displayed text differ from what it is.
_INVISIBLE = re.compile(
    r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    r"\U000e0000-\U000e007f]"
)
_ZWJ = "\u200d"
_BLANK = "\u2013"  # an en dash, as the HTML report shows a missing value
# What GitHub turns into a link or a notification after Markdown has been rendered, so
# that escaping cannot stop it: the joiner goes after "@", "#", ":" and before ".", "-".
_AUTOLINK = re.compile(r"@|#(?=\w)|:(?=//)|(?i:(?<=www)\.)|(?i:(?<=\bgh)-(?=\d))")
# HTML's characters become entities, so not one "<" of the input reaches the page; the
# Markdown ones get a backslash (the one escape GFM honours for "|" inside a table).
_ESCAPES = {ord("<"): "&lt;", ord(">"): "&gt;", ord("&"): "&amp;"} | {
    ord(c): "\\" + c for c in "\\`*_~[]|$^"
}
_SHA = re.compile(r"[0-9a-f]{7,64}")
_REPORT_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&'*+,;=%]+")

_CRASH_HEADER = (
    "| status | crash group | harness | reliability | introduced | fixed | found after |\n"
    "|---|---|---|---:|---|---|---:|"
)
_HARNESS_HEADER = (
    "| harness | kind | execs | exec/s | coverage | crashes | status |\n"
    "|---|---|---:|---:|---:|---:|---|"
)
# Rows are listed by what a reader must act on first, since the tail is what gets cut.
_STATUS_ORDER = {"open": 0, "flaky": 1, "fixed": 2, "wontfix": 3, "duplicate": 4}


def markdown_report(
    summary: Mapping[str, Any], *, report_url: str | None = None, max_chars: int = 60_000
) -> str:
    """The summary as a pull-request comment of at most ``max_chars`` characters.

    Size is counted in UTF-16 code units, which is never less than the character count.
    """
    if max_chars < _MIN_CHARS:
        raise ValueError(f"max_chars must be at least {_MIN_CHARS}, not {max_chars!r}")
    if report_url is not None and not _REPORT_URL.fullmatch(report_url):
        raise ValueError(
            f"report_url must be an http(s) URL without spaces, brackets, quotes or "
            f"parentheses, not {report_url!r}"
        )
    crashes = sorted(_entries(summary, "crashes"), key=_importance)
    harnesses = _entries(summary, "harnesses")
    head = [_heading(crashes), _campaign_line(_mapping(_get(summary, "campaign")))]
    tail = [f"[Full report]({report_url})"] if report_url is not None else []
    crash_rows = [_crash_row(c) for c in crashes]
    harness_rows = [_harness_row(h) for h in harnesses[:_MAX_HARNESS_ROWS]]

    def render(crashes_shown: int, harnesses_shown: int) -> str:
        blocks = [*head, *_crash_blocks(crash_rows, crashes_shown)]
        blocks += _harness_blocks(harness_rows[:harnesses_shown], len(harnesses))
        return "\n\n".join([*blocks, *tail]) + "\n"

    # Crash rows go first, then harness rows; a summary too long even without them (only a
    # tiny max_chars allows that) is cut at a line.
    crashes_shown = _most_that_fit(
        len(crash_rows), lambda n: render(n, len(harness_rows)), max_chars
    )
    harnesses_shown = _most_that_fit(
        len(harness_rows), lambda n: render(crashes_shown, n), max_chars
    )
    return _cut(render(crashes_shown, harnesses_shown), max_chars)


def _heading(crashes: Sequence[Mapping[str, Any]]) -> str:
    new = sum(1 for c in crashes if c.get("new") is True)
    counts = {
        status: sum(1 for c in crashes if c.get("status") == status) for status in _STATUS_ORDER
    }
    return (
        f"### fuzzorch: {new} new, {counts['open']} open, {counts['fixed']} fixed, "
        f"{counts['flaky']} flaky crash {_plural(len(crashes), 'group')}"
    )


def _campaign_line(campaign: Mapping[str, Any]) -> str:
    commit = _short_sha(campaign.get("commit"))
    return (
        f"Campaign {_inline(campaign.get('id'), _NAME_LIMIT)} on "
        f"**{_inline(campaign.get('repo'), _NAME_LIMIT)}**, "
        f"branch **{_inline(campaign.get('branch'), _NAME_LIMIT)}** at {commit} · "
        f"{_elapsed(campaign.get('started_at'), campaign.get('finished_at'))} · "
        f"{_inline(campaign.get('status'), 20)}"
    )


def _crash_blocks(rows: Sequence[str], shown: int) -> list[str]:
    if not rows:
        return ["No crash groups."]
    blocks = [f"#### Crash groups ({len(rows)})", "\n".join([_CRASH_HEADER, *rows[:shown]])]
    if shown < len(rows):
        # A blank line first: a line right under a table would be read as one more row.
        blocks.append(f"… {len(rows) - shown} more crash groups (see the full report)")
    return blocks


def _harness_blocks(rows: Sequence[str], total: int) -> list[str]:
    if total == 0:
        return []
    blocks = [f"#### Harnesses ({total})"]
    if rows:
        blocks.append("\n".join([_HARNESS_HEADER, *rows]))
    if len(rows) < total:
        blocks.append(f"… {total - len(rows)} more {_plural(total - len(rows), 'harness')}")
    return blocks


def _crash_row(crash: Mapping[str, Any]) -> str:
    status = _inline(crash.get("status"), 20)
    if crash.get("new") is True:
        status += ", new"
    title = _inline(crash.get("title"), _TITLE_LIMIT)
    message = _inline(_first_line(crash.get("message")), _MESSAGE_LIMIT)
    if message != _BLANK:
        title = f"{title}: {message}"
    return _row(
        status,
        title,
        _inline(crash.get("harness"), _NAME_LIMIT),
        _percent(crash.get("reliability")),
        _short_sha(_mapping(crash.get("introduced")).get("commit")),
        _short_sha(_mapping(crash.get("fixed")).get("commit")),
        "re-checked"
        if crash.get("found_after_s") is None
        else _seconds(crash.get("found_after_s")),
    )


def _harness_row(harness: Mapping[str, Any]) -> str:
    return _row(
        _inline(harness.get("name"), _NAME_LIMIT),
        _inline(harness.get("kind"), 20),
        _count(harness.get("execs")),
        _rate(harness.get("exec_per_s")),
        _count(harness.get("coverage")),
        _count(harness.get("crashes")),
        _inline(harness.get("status"), 20),
    )


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _inline(value: object, limit: int) -> str:
    """``value`` as one line of inert Markdown text; the blank mark when empty or not a string."""
    if not isinstance(value, str):
        return _BLANK
    # Bound before cleaning so that a megabyte of input costs no more than a short one.
    text = _SURROGATE.sub("\ufffd", value[: limit * 4])
    text = " ".join(_CONTROL.sub(" ", _INVISIBLE.sub("", text)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text:
        return _BLANK
    text = _AUTOLINK.sub(lambda m: _ZWJ + m[0] if m[0] in ".-" else m[0] + _ZWJ, text)
    return text.translate(_ESCAPES)


def _first_line(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    lines = value[: _MESSAGE_LIMIT * 4].splitlines()
    return lines[0] if lines else None


def _short_sha(value: object) -> str:
    # GitHub links a bare commit id of the repository the comment is in; nothing else.
    return value[:12] if isinstance(value, str) and _SHA.fullmatch(value) else _BLANK


def _percent(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return _BLANK
    return f"{round(value * 100)} %"


def _count(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
        return _BLANK
    return f"{value:,}"


def _rate(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _BLANK
    if not 0 <= value < _MAX_COUNT:  # also false for NaN
        return _BLANK
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _seconds(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _BLANK
    if not 0 <= value < _MAX_COUNT:
        return _BLANK
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:,} h {minutes:02d} min"


def _elapsed(started: object, finished: object) -> str:
    if not isinstance(started, str) or not isinstance(finished, str):
        return "not finished" if isinstance(started, str) else "not started"
    try:
        seconds = dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)
        return _seconds(seconds.total_seconds())
    except (ValueError, TypeError, OverflowError):
        return _BLANK


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return noun
    return noun + ("es" if noun.endswith("s") else "s")


def _importance(crash: Mapping[str, Any]) -> tuple[int, int]:
    status = crash.get("status")
    rank = _STATUS_ORDER.get(status, len(_STATUS_ORDER)) if isinstance(status, str) else 99
    return rank, 0 if crash.get("new") is True else 1


def _most_that_fit(total: int, render: Callable[[int], str], max_chars: int) -> int:
    """The largest ``n <= total`` whose rendering fits (0 when none does)."""
    if _size(render(total)) <= max_chars:
        return total
    low, high = 0, total  # render(low) may not fit; render(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if _size(render(middle)) <= max_chars:
            low = middle
        else:
            high = middle
    return low


def _cut(text: str, max_chars: int) -> str:
    if _size(text) <= max_chars:
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + _size(line) > max_chars:
            break
        kept.append(line)
        used += _size(line)
    return "".join(kept)


def _size(text: str) -> int:
    """Length in UTF-16 code units: what a JavaScript or Java limit counts."""
    return len(text.encode("utf-16-le")) // 2


def _entries(summary: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = _get(summary, key)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping)]


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
