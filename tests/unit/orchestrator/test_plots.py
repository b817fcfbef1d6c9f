"""SVG line charts: well-formed, escaped, bounded in size, and deterministic."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.reports.plots import (
    MAX_SERIES,
    PALETTE,
    Series,
    downsample,
    format_tick,
    line_chart,
    ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "</svg><script>alert(1)</script>"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 (our own output, parsed to check it)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def polylines(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}polyline"))


def coords(line: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in line.get("points", "").split())]


def coverage(n: int, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(float(t), scale * math.log1p(t)) for t in range(n)]


def test_a_chart_has_title_axes_lines_and_legend() -> None:
    svg = line_chart(
        "Coverage",
        [Series("parse_json", coverage(100)), Series("parse_xml", coverage(50, 2))],
        y_label="edges",
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Coverage"
    assert root.find(f"{SVG}title").text == "Coverage"  # type: ignore[union-attr]
    lines = polylines(root)
    assert len(lines) == 2
    assert [line.get("stroke") for line in lines] == list(PALETTE[:2])
    assert [line.findtext(f"{SVG}title") for line in lines] == ["parse_json", "parse_xml"]
    shown = texts(root)
    assert {"Coverage", "seconds", "edges", "parse_json", "parse_xml", "0"} <= set(shown)
    assert "no data yet" not in shown


def test_no_script_no_style_attributes_no_foreign_elements() -> None:
    svg = line_chart(HOSTILE, [Series(HOSTILE, coverage(10)), Series("one", [(1, 1)])])
    root = parse(svg)
    allowed = {"svg", "title", "text", "g", "line", "path", "polyline", "circle"}
    for element in root.iter():
        assert element.tag.removeprefix(SVG) in allowed
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
    assert "<script" not in svg
    assert "</svg>" not in svg[:-6]


@pytest.mark.parametrize(
    "name",
    [
        HOSTILE,
        '"><img src=x onerror=alert(1)>',
        "a & b ]]> <!-- -->",
        'it\'s "quoted"',
        "\x00\x01\x1b[31mred\x7f",
        "\ud800 lone surrogate \udfff",
        "bidi \u202e gnp.exe",
        "\ufffe\uffff",
        "line\nbreak\ttab\r",
        "日本語のハーネス",
    ],
)
def test_hostile_names_and_titles_render_as_text(name: str) -> None:
    svg = line_chart(name, [Series(name, coverage(5))], x_label=name, y_label=name)
    root = parse(svg)
    svg.encode("utf-8")  # no lone surrogates survive
    title = root.findtext(f"{SVG}title")
    assert title is not None
    assert "\u202e" not in svg
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", svg)
    if name.isprintable():
        assert title == name
        assert root.get("aria-label") == name
        assert polylines(root)[0].findtext(f"{SVG}title") == name


def test_long_names_are_shortened() -> None:
    name = "h" * 10_000
    svg = line_chart("t" * 10_000, [Series(name, coverage(5))])
    assert len(svg) < 5_000
    root = parse(svg)
    assert any(text.endswith("\u2026") for text in texts(root))


def test_empty_input_says_no_data_yet() -> None:
    for series in ([], [Series("a", [])], [Series("a", [(math.nan, 1), (1, math.inf)])]):
        root = parse(line_chart("Coverage", series))
        assert "no data yet" in texts(root)
        assert polylines(root) == []


def test_a_series_without_data_is_marked_in_the_legend() -> None:
    root = parse(line_chart("c", [Series("a", coverage(5)), Series("b", [])]))
    assert "b (no data)" in texts(root)
    assert len(polylines(root)) == 1


def test_one_point_is_drawn_as_a_dot() -> None:
    root = parse(line_chart("c", [Series("a", [(10.0, 5.0)])]))
    assert polylines(root) == []
    dots = list(root.iter(f"{SVG}circle"))
    assert len(dots) == 1
    assert dots[0].get("fill") == PALETTE[0]


@pytest.mark.parametrize(
    "points",
    [
        [(0.0, 7.0), (10.0, 7.0), (20.0, 7.0)],
        [(0.0, 0.0), (10.0, 0.0)],
        [(5.0, -3.0), (5.0, -3.0), (5.0, -3.0)],
        [(0.0, 1e15), (1.0, 1e15)],
        [(0.0, 1e-300), (1e-300, 2e-300)],
        [(-100.0, -5.0), (100.0, 5.0)],
    ],
)
def test_degenerate_ranges_still_draw(points: list[tuple[float, float]]) -> None:
    root = parse(line_chart("c", [Series("a", points)]))
    drawn = polylines(root) or list(root.iter(f"{SVG}circle"))
    assert len(drawn) == 1
    assert "nan" not in ET.tostring(root, encoding="unicode").lower()


def test_non_finite_and_implausible_points_are_dropped() -> None:
    points = [(0.0, 1.0), (math.nan, 2.0), (2.0, math.inf), (3.0, -math.inf), (4.0, 1e300)]
    root = parse(line_chart("c", [Series("a", [*points, (5.0, 3.0)])]))
    assert len(coords(polylines(root)[0])) == 2


def test_points_may_come_in_any_order_with_duplicates() -> None:
    ordered = line_chart("c", [Series("a", [(0, 0), (1, 1), (1, 1), (2, 4)])])
    shuffled = line_chart("c", [Series("a", [(2, 4), (1, 1), (0, 0), (1, 1)])])
    assert ordered == shuffled
    xs = [x for x, _ in coords(polylines(parse(ordered))[0])]
    assert xs == sorted(xs)


def test_the_chart_is_deterministic() -> None:
    series = [Series(f"h{i}", coverage(3000, i + 1)) for i in range(5)]
    assert line_chart("c", series) == line_chart("c", list(series))


def test_each_series_is_downsampled_to_max_points() -> None:
    root = parse(line_chart("c", [Series("a", coverage(10_000))], max_points=100))
    assert 2 < len(coords(polylines(root)[0])) <= 100


def test_fifty_long_series_stay_small() -> None:
    series = [Series(f"harness_{i}", coverage(10_000, i + 1)) for i in range(50)]
    svg = line_chart("Coverage", series)
    assert len(svg.encode()) < 100_000
    root = parse(svg)
    assert len(polylines(root)) == 50
    # Past the palette, colours repeat with a dash pattern so lines stay distinguishable.
    styles = {(line.get("stroke"), line.get("stroke-dasharray")) for line in polylines(root)}
    assert len(styles) == 40


def test_too_many_series_are_summarized() -> None:
    series = [Series(f"h{i}", [(0, i), (1, i)]) for i in range(MAX_SERIES + 5)]
    root = parse(line_chart("c", series))
    assert len(polylines(root)) == MAX_SERIES
    assert "and 5 more not shown" in texts(root)


def test_downsample_keeps_first_last_and_extremes() -> None:
    points = [(float(i), float((i * 7919) % 1000)) for i in range(5000)]
    points[1234] = (1234.0, 5000.0)
    points[4321] = (4321.0, -5000.0)
    kept = downsample(points, 50)
    assert len(kept) <= 50
    assert kept[0] == points[0]
    assert kept[-1] == points[-1]
    assert (1234.0, 5000.0) in kept
    assert (4321.0, -5000.0) in kept
    assert kept == sorted(kept)
    assert downsample(points[:10], 50) == points[:10]
    assert downsample(points, 2) == [points[0], points[-1]]
    with pytest.raises(ValueError, match="1"):
        downsample(points, 1)


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [
        (0, None, "0"),
        (-0.0, None, "0"),
        (7, None, "7"),
        (950, None, "950"),
        (1000, None, "1k"),
        (1200, None, "1.2k"),
        (1250, 250, "1.25k"),
        (12_345, None, "12.3k"),
        (999_960, None, "1M"),
        (999_960, 10, "999.96k"),
        (3_400_000, None, "3.4M"),
        (2.5e9, None, "2.5G"),
        (7e12, None, "7T"),
        (1e15, None, "1000T"),
        (-1500, None, "-1.5k"),
        (0.25, 0.25, "0.25"),
        (0.30000000000000004, 0.1, "0.3"),
        (1_000_001, 1, "1.000001M"),
        (2.5e-300, 2.5e-300, "2.5e-300"),
    ],
)
def test_tick_format(value: float, step: float | None, text: str) -> None:
    assert format_tick(value, step) == text


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 100, [0, 25, 50, 75, 100]),
        (0, 1234, [0, 500, 1000, 1500]),
        (0, 0, [0, 0.25, 0.5, 0.75, 1]),
        (0, 0.0007, [0, 0.0002, 0.0004, 0.0006, 0.0008]),
        (-3, 7, [-5, -2.5, 0, 2.5, 5, 7.5]),
        (0, 3_600_000, [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000]),
    ],
)
def test_ticks_are_round(low: float, high: float, expected: list[float]) -> None:
    assert ticks(low, high) == expected


def test_ticks_refuse_a_bad_range() -> None:
    with pytest.raises(ValueError, match="nan"):
        ticks(0, math.nan)
    with pytest.raises(ValueError, match="5"):
        ticks(5, 1)


def test_axis_labels_use_abbreviations() -> None:
    root = parse(line_chart("c", [Series("a", [(0, 0), (7200, 3_400_000)])]))
    shown = texts(root)
    assert "3M" in shown
    assert "4M" in shown
    assert "8k" in shown


@pytest.mark.parametrize(
    ("option", "value"),
    [("width", 10), ("height", 10**6), ("max_points", 1), ("width", True), ("height", 240.0)],
)
def test_bad_options_are_refused_by_value(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        line_chart("c", [], **{option: value})  # type: ignore[arg-type]


_FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(max_size=300),
    series=st.lists(
        st.builds(
            Series,
            name=st.text(max_size=300),
            points=st.lists(st.tuples(_FLOATS, _FLOATS), max_size=60),
        ),
        max_size=12,
    ),
    max_points=st.integers(2, 500),
    width=st.integers(200, 1200),
    height=st.integers(120, 800),
)
def test_any_input_gives_bounded_well_formed_svg(
    title: str, series: list[Series], max_points: int, width: int, height: int
) -> None:
    svg = line_chart(title, series, max_points=max_points, width=width, height=height)
    root = parse(svg)
    assert len(svg.encode()) < 100_000
    assert "<script" not in svg
    for line in polylines(root):
        points = coords(line)
        assert len(points) <= max_points
        assert all(math.isfinite(v) for point in points for v in point)
        assert all(0 <= x <= width and 0 <= y <= height for x, y in points)
    assert svg == line_chart(title, series, max_points=max_points, width=width, height=height)
