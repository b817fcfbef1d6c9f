"""Line charts as standalone inline SVG: coverage and executions over time, per harness.

The campaign page forbids scripts and ``style`` attributes (its CSP), so a chart is plain
SVG drawn with presentation attributes. Harness names, titles and labels are hostile text:
they are stripped of characters XML cannot carry or that spoof (bidi controls), shortened,
and escaped. A chart's size is bounded whatever the input — long campaigns are downsampled,
many series share a fixed point budget, and at most ``MAX_SERIES`` are drawn — and the same
input always gives the same bytes, so a report can be diffed and cached.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

__all__ = ["MAX_SERIES", "PALETTE", "Series", "downsample", "format_tick", "line_chart", "ticks"]

# Tableau 10: distinct at a glance and readable on white.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
# After ten series the colours repeat with another dash pattern.
_DASHES = ("", "6 3", "2 2", "8 3 2 3")
MAX_SERIES = 60
# All series of one chart share this many points, so 50 long series stay under ~100 KB.
_POINT_BUDGET = 4000
# Counters beyond this are corrupt data, and would break the tick arithmetic.
_MAX_ABS = 1e15
_MAX_NAME = 60
_MAX_TITLE = 200
_UNITS = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 64, 16, 28, 40
_LEGEND_ROW = 16


@dataclass(frozen=True)
class Series:
    """One line: a harness name and its ``(seconds since campaign start, value)`` points."""

    name: str
    points: Sequence[tuple[float, float]]


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str = "seconds",
    y_label: str = "",
    width: int = 640,
    height: int = 240,
    max_points: int = 400,
) -> str:
    """An SVG line chart of ``series``; ``width`` x ``height`` excludes the legend below it."""
    _check_int("width", width, 200, 4000)
    _check_int("height", height, 120, 4000)
    _check_int("max_points", max_points, 2, 100_000)
    shown = list(series[:MAX_SERIES])
    budget = max(2, min(max_points, _POINT_BUDGET // max(1, len(shown))))
    cleaned = [downsample(_clean(s.points), budget) for s in shown]
    legend_rows = _legend_rows(len(shown), len(series) - len(shown), width)
    total_height = height + legend_rows * _LEGEND_ROW + (8 if legend_rows else 0)
    title_text = _text(title, _MAX_TITLE)
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="fz-chart" role="img"'
        f' width="{width}" height="{total_height}" viewBox="0 0 {width} {total_height}"'
        f' aria-label={quoteattr(title_text)} font-family="sans-serif" font-size="11">',
        f"<title>{escape(title_text)}</title>",
        f'<text x="{_MARGIN_LEFT}" y="18" font-size="13" font-weight="bold"'
        f' fill="#222222">{escape(_text(title_text, (width - _MARGIN_LEFT) // 7))}</text>',
    ]
    points = [p for pts in cleaned for p in pts]
    box = _Box(_MARGIN_LEFT, _MARGIN_TOP, width - _MARGIN_RIGHT, height - _MARGIN_BOTTOM)
    if not points:
        out.append(
            f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle"'
            ' fill="#666666">no data yet</text>'
        )
    else:
        xs = ticks(min(0.0, *(x for x, _ in points)), max(x for x, _ in points))
        ys = ticks(min(0.0, *(y for _, y in points)), max(y for _, y in points))
        out += _axes(box, xs, ys, _text(x_label, _MAX_NAME), _text(y_label, _MAX_NAME))
        for index, pts in enumerate(cleaned):
            out += _line(box, xs, ys, pts, index=index, name=_text(shown[index].name, _MAX_TITLE))
    out += _legend(shown, cleaned, len(series) - len(shown), width, height)
    out.append("</svg>")
    return "\n".join(out)


def downsample(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` of ``points`` (sorted by x): first, last, and each bucket's extremes."""
    if limit < 2:
        raise ValueError(f"Invalid downsampling limit {limit!r}: must be at least 2")
    if len(points) <= limit:
        return list(points)
    inner = points[1:-1]
    buckets = (limit - 2) // 2
    kept = [points[0]]
    for b in range(buckets):
        chunk = range(b * len(inner) // buckets, (b + 1) * len(inner) // buckets)
        low = min(chunk, key=lambda i: inner[i][1])
        high = max(chunk, key=lambda i: inner[i][1])
        kept += [inner[i] for i in sorted({low, high})]
    kept.append(points[-1])
    return kept


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten) covering a range."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"Invalid tick range {low!r}..{high!r}")
    span = high - low
    if span <= max(abs(low), abs(high)) * 1e-9 or span < 1e-250:
        # One value (or a range too thin to print, or to take a logarithm of): show it with
        # room around it.
        pad = max(1.0, abs(low) * 0.1)
        low, high = (0.0, 1.0) if low == high == 0 else (low - pad if low < 0 else low, high + pad)
        span = high - low
    raw = span / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    values = [(first + i) * step for i in range(last - first + 1)]
    # 3 * 0.0002 is 0.0006000000000000001 in floating point; a step with more decimals than
    # rounding can keep (1e-300) stays as computed.
    digits = _decimals(step)
    return values if digits is None else [round(v, digits) for v in values]


def format_tick(value: float, step: float | None = None) -> str:
    """``value`` in short: ``950``, ``1.2k``, ``3.4M``; with ``step``, fine enough for ticks."""
    if value == 0:
        return "0"
    for size, suffix in _UNITS:
        if abs(value) >= size * 1000 and suffix != "T":
            continue  # too big for this unit
        scaled = value / size
        digits = None if step is None else _decimals(step / size)
        if digits is None:
            text = f"{scaled:.3g}" if abs(scaled) < 1000 else f"{scaled:.0f}"
        else:
            text = f"{scaled:.{digits}f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
        # Rounding can reach the next unit (999.96k prints as 1e+03): let that unit say it.
        if abs(float(text)) < 1000 or suffix == "T":
            return f"{text}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def _decimals(step: float) -> int | None:
    """How many decimals print ``step`` exactly (None beyond twelve)."""
    for digits in range(13):
        if abs(round(step, digits) - step) <= abs(step) * 1e-9:
            return digits
    return None


@dataclass(frozen=True)
class _Box:
    left: int
    top: int
    right: int
    bottom: int

    def place(self, value: float, axis: Sequence[float], *, vertical: bool) -> float:
        fraction = (value - axis[0]) / (axis[-1] - axis[0])
        if vertical:
            return self.bottom - fraction * (self.bottom - self.top)
        return self.left + fraction * (self.right - self.left)


def _axes(
    box: _Box, xs: Sequence[float], ys: Sequence[float], x_label: str, y_label: str
) -> list[str]:
    out = ['<g stroke="#e0e0e0" stroke-width="1">']
    for y in ys:
        py = _num(box.place(y, ys, vertical=True))
        out.append(f'<line x1="{box.left}" y1="{py}" x2="{box.right}" y2="{py}"/>')
    out.append("</g>")
    out.append(
        f'<path d="M{box.left} {box.top}V{box.bottom}H{box.right}" fill="none"'
        ' stroke="#666666" stroke-width="1"/>'
    )
    out.append('<g fill="#444444">')
    x_step, y_step = xs[1] - xs[0], ys[1] - ys[0]
    for y in ys:
        py = _num(box.place(y, ys, vertical=True) + 4)
        out.append(
            f'<text x="{box.left - 6}" y="{py}" text-anchor="end">{format_tick(y, y_step)}</text>'
        )
    for x in xs:
        px = _num(box.place(x, xs, vertical=False))
        out.append(
            f'<text x="{px}" y="{box.bottom + 14}" text-anchor="middle">'
            f"{format_tick(x, x_step)}</text>"
        )
    out.append(
        f'<text x="{(box.left + box.right) // 2}" y="{box.bottom + 30}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    if y_label:
        middle = (box.top + box.bottom) // 2
        out.append(
            f'<text transform="translate(12 {middle}) rotate(-90)" text-anchor="middle">'
            f"{escape(y_label)}</text>"
        )
    out.append("</g>")
    return out


def _line(
    box: _Box,
    xs: Sequence[float],
    ys: Sequence[float],
    points: Sequence[tuple[float, float]],
    *,
    index: int,
    name: str,
) -> list[str]:
    coords: list[str] = []
    for x, y in points:
        pair = f"{_num(box.place(x, xs, vertical=False))},{_num(box.place(y, ys, vertical=True))}"
        if not coords or coords[-1] != pair:  # invisible repeats only cost bytes
            coords.append(pair)
    if not coords:
        return []
    colour, dash = _style(index)
    label = f"<title>{escape(name)}</title>"
    if len(coords) == 1:
        cx, cy = coords[0].split(",")
        return [f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}">{label}</circle>']
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return [
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dashes}'
        f' stroke-linejoin="round" points="{" ".join(coords)}">{label}</polyline>'
    ]


def _legend(
    shown: Sequence[Series],
    cleaned: Sequence[Sequence[tuple[float, float]]],
    hidden: int,
    width: int,
    height: int,
) -> list[str]:
    if not shown:
        return []
    columns = _legend_columns(width)
    column_width = (width - _MARGIN_LEFT - _MARGIN_RIGHT) // columns
    out = ['<g class="fz-legend" fill="#222222">']
    for index, entry in enumerate(shown):
        row, column = divmod(index, columns)
        x = _MARGIN_LEFT + column * column_width
        y = height + 4 + row * _LEGEND_ROW
        colour, dash = _style(index)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        # Room for the name in its column: about 6 px per character at this font size.
        name = _text(entry.name, max(4, min(_MAX_NAME, (column_width - 28) // 6)))
        note = "" if cleaned[index] else " (no data)"
        out.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{colour}"'
            f' stroke-width="2"{dashes}/>'
            f'<text x="{x + 22}" y="{y + 4}">{escape(name + note)}</text>'
        )
    if hidden:
        y = height + 4 + math.ceil(len(shown) / columns) * _LEGEND_ROW
        out.append(f'<text x="{_MARGIN_LEFT}" y="{y + 4}">and {hidden} more not shown</text>')
    out.append("</g>")
    return out


def _legend_columns(width: int) -> int:
    return max(1, (width - _MARGIN_LEFT - _MARGIN_RIGHT) // 150)


def _legend_rows(shown: int, hidden: int, width: int) -> int:
    return math.ceil(shown / _legend_columns(width)) + (1 if hidden else 0)


def _style(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)], _DASHES[(index // len(PALETTE)) % len(_DASHES)]


def _clean(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Finite, plausible points sorted by time (then value, so the order is canonical)."""
    kept = [
        (float(x), float(y))
        for x, y in points
        if math.isfinite(x) and math.isfinite(y) and abs(x) <= _MAX_ABS and abs(y) <= _MAX_ABS
    ]
    return sorted(kept)


def _text(value: str, limit: int) -> str:
    """``value`` as safe display text: no XML-illegal or invisible characters, at most ``limit``."""
    text = "".join(
        "\ufffd" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else ch
        for ch in str(value)[: limit + 1]
    )
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _num(value: float) -> str:
    """A coordinate with one decimal and no trailing ``.0``: short and deterministic."""
    text = f"{value:.1f}"
    text = text.removesuffix(".0")
    return "0" if text == "-0" else text


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"Invalid {name} {value!r}: must be an integer in {low}..{high}")
