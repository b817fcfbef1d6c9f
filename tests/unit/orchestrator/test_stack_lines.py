"""Stored stack lines (``path:line in function``) come from hostile output: parsing them for
pages and SARIF never fails, whatever the path holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.ui.model import parse_stack


def test_plain_lines_parse_into_frames() -> None:
    assert parse_stack("fuzz/h.py:9 in TestOneInput\n/usr/lib/x.py: in <module>") == [
        {"path": "fuzz/h.py", "line": 9, "function": "TestOneInput"},
        {"path": "/usr/lib/x.py", "line": None, "function": "<module>"},
    ]


def test_odd_digits_and_separators_in_a_path_do_not_break_parsing() -> None:
    # "²".isdigit() is true, int("²") raises: the path is kept whole instead.
    frames = parse_stack("x:² in y.py:5 in f\na in b.py:7 in g")
    assert frames[0] == {"path": "x:² in y.py", "line": 5, "function": "f"}
    assert frames[1] == {"path": "a in b.py", "line": 7, "function": "g"}
    assert parse_stack("p.py:²³ in f") == [{"path": "p.py:²³", "line": None, "function": "f"}]


@given(st.text(max_size=2000))
def test_any_stored_text_parses(text: str) -> None:
    for frame in parse_stack(text):
        assert frame["line"] is None or frame["line"] >= 0
