"""Small SVG charts for operator reports: plain strings, no network, no dependency.

Each function returns one ``<svg>`` element sized in pixels; pages put them inline.
Colours come from `PALETTE` in order unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2f7ed8", "#f28f43", "#8bbc21", "#910000", "#1aadce", "#492970", "#77a1e5")
FONT = "font-family='system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif'"


@dataclass(frozen=True)
class Scale:
    """A linear map from data values [`lo`, `hi`] to pixels [`start`, `end`]."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (self.end - self.start) * (value - self.lo) / ((self.hi - self.lo) or 1.0)


@dataclass(frozen=True)
class Window:
    """A shaded span on a time axis: from `start` to `end` (x units), with a label."""

    start: float
    end: float
    label: str


def _text(x: float, y: float, text: str, *, size: int = 12, anchor: str = "start",
          weight: str = "normal", fill: str = "#333") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}' {FONT}>{escape(text)}</text>")


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>" + "".join(body) + "</svg>")


def _legend(series: Sequence[str], colors: Sequence[str], x: float, y: float) -> list[str]:
    parts, at = [], x
    for name, color in zip(series, colors, strict=False):
        parts.append(f"<rect x='{at:.1f}' y='{y - 10:.1f}' width='12' height='12' fill='{color}'/>")
        parts.append(_text(at + 16, y, name))
        at += 28 + 7 * len(name)
    return parts


def stacked_bars(rows: Sequence[tuple[str, Mapping[str, float]]], series: Sequence[str], *,
                 width: int = 720, title: str = "", colors: Sequence[str] = PALETTE) -> str:
    """One horizontal 100% bar per row (label, shares by series), shares labelled inside."""
    left, top, bar_h, gap = 150, 46 if title else 26, 28, 12
    height = top + len(rows) * (bar_h + gap) + 8
    span = width - left - 20
    body = [_text(0, 18, title, size=15, weight="bold")] if title else []
    body += _legend(series, colors, left, top - 10)
    for i, (label, shares) in enumerate(rows):
        y, x = top + i * (bar_h + gap), float(left)
        body.append(_text(left - 8, y + bar_h / 2 + 4, label, anchor="end"))
        for name, color in zip(series, colors, strict=False):
            w = span * max(0.0, shares.get(name, 0.0))
            body.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{color}'/>")
            if w > 38:
                body.append(_text(x + w / 2, y + bar_h / 2 + 4, f"{shares[name]:.0%}", anchor="middle",
                                  fill="#fff", weight="bold"))
            x += w
    return _svg(width, height, body)


def value_bars(rows: Sequence[tuple[str, float, str]], *, width: int = 720, title: str = "",
               maximum: float | None = None, color: str = PALETTE[0]) -> str:
    """One horizontal bar per row (label, value, value's text), scaled to `maximum`."""
    left, top, bar_h, gap = 150, 34 if title else 8, 24, 10
    height = top + len(rows) * (bar_h + gap) + 4
    top_value = maximum or max((v for _, v, _ in rows), default=1.0) or 1.0
    span = width - left - 120
    body = [_text(0, 18, title, size=15, weight="bold")] if title else []
    for i, (label, value, shown) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = span * max(0.0, value) / top_value
        body.append(_text(left - 8, y + bar_h / 2 + 4, label, anchor="end"))
        body.append(f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{color}' rx='2'/>")
        body.append(_text(left + w + 6, y + bar_h / 2 + 4, shown))
    return _svg(width, height, body)


def stacked_area(xs: Sequence[float], stacks: Mapping[str, Sequence[float]], *, width: int = 720,
                 height: int = 260, title: str = "", x_label: str = "", windows: Sequence[Window] = (),
                 colors: Sequence[str] = PALETTE) -> str:
    """Shares over time, stacked to 100% (each x's values are normalised), with shaded windows."""
    left, right, top, bottom = 46, 16, 48 if title else 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    names = list(stacks)
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    sx = Scale(x0, x1, left, left + plot_w)
    body = [_text(0, 18, title, size=15, weight="bold")] if title else []
    body += _legend(names, colors, left, top - 12)
    totals = [sum(stacks[n][i] for n in names) or 1.0 for i in range(len(xs))]
    below = [0.0] * len(xs)
    for name, color in zip(names, colors, strict=False):
        upper = [below[i] + stacks[name][i] / totals[i] for i in range(len(xs))]
        points = [f"{sx(x):.1f},{top + plot_h * (1 - u):.1f}" for x, u in zip(xs, upper, strict=True)]
        points += [f"{sx(x):.1f},{top + plot_h * (1 - b):.1f}" for x, b in reversed(list(zip(xs, below, strict=True)))]
        body.append(f"<polygon points='{' '.join(points)}' fill='{color}' stroke='none'/>")
        below = upper
    for window in windows:
        a, b = sx(max(x0, window.start)), sx(min(x1, window.end))
        body.append(f"<rect x='{a:.1f}' y='{top}' width='{max(1.0, b - a):.1f}' height='{plot_h}' "
                    "fill='#000' fill-opacity='0.10' stroke='#900' stroke-dasharray='4 3'/>")
        body.append(_text((a + b) / 2, top + 16, window.label, anchor="middle", weight="bold", fill="#600"))
    body += _axes(left, top, plot_w, plot_h, x0, x1, x_label)
    return _svg(width, height, body)


def nice_ticks(lo: float, hi: float, *, most: int = 8) -> list[float]:
    """Round tick positions between `lo` and `hi` (steps of 1, 2, 5 times a power of ten)."""
    span = (hi - lo) or 1.0
    step = 1e-9
    for power in range(-3, 10):
        for base in (1, 2, 5):
            step = base * 10.0**power
            if span / step <= most:
                first = -(-lo // step) * step
                return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]
    return [lo, hi]


def _axes(left: float, top: float, w: float, h: float, x0: float, x1: float, x_label: str) -> list[str]:
    parts = [f"<rect x='{left}' y='{top}' width='{w}' height='{h}' fill='none' stroke='#999'/>"]
    for share in (0.0, 0.5, 1.0):
        y = top + h * (1 - share)
        parts.append(_text(left - 6, y + 4, f"{share:.0%}", anchor="end", size=11))
    for tick in nice_ticks(x0, x1):
        x = left + w * (tick - x0) / ((x1 - x0) or 1.0)
        parts.append(_text(x, top + h + 16, f"{tick:g}", anchor="middle", size=11))
    if x_label:
        parts.append(_text(left + w / 2, top + h + 31, x_label, anchor="middle", size=11))
    return parts


def lines(xs: Sequence[float], series: Mapping[str, Sequence[float]], *, width: int = 720, height: int = 240,
          title: str = "", x_label: str = "", y_format: str = "{:.0%}", marks: Mapping[float, str] | None = None,
          hline: tuple[float, str] | None = None, colors: Sequence[str] = PALETTE) -> str:
    """Line series over `xs` on one y scale, with optional marked xs and a horizontal rule."""
    left, right, top, bottom = 56, 16, 48 if title else 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs] + ([hline[0]] if hline else [])
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    lo, hi = (lo - 0.05 * ((hi - lo) or 1), hi + 0.05 * ((hi - lo) or 1))
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    sx = Scale(x0, x1, left, left + plot_w)
    sy = Scale(lo, hi, top + plot_h, top)
    body = [_text(0, 18, title, size=15, weight="bold")] if title else []
    body += _legend(list(series), colors, left, top - 12)
    body.append(f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#999'/>")
    if hline is not None:
        y = sy(hline[0])
        body.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
                    "stroke='#900' stroke-dasharray='5 4'/>")
        body.append(_text(left + plot_w - 4, y - 5, hline[1], anchor="end", fill="#900", size=11))
    for (_name, vs), color in zip(series.items(), colors, strict=False):
        pts = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in zip(xs, vs, strict=True))
        body.append(f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2.5'/>")
        body += [f"<circle cx='{sx(x):.1f}' cy='{sy(v):.1f}' r='3' fill='{color}'/>"
                 for x, v in zip(xs, vs, strict=True)]
    for x, label in (marks or {}).items():
        body.append(f"<line x1='{sx(x):.1f}' x2='{sx(x):.1f}' y1='{top}' y2='{top + plot_h}' "
                    "stroke='#333' stroke-width='1.5'/>")
        right_half = sx(x) > left + plot_w / 2
        body.append(_text(sx(x) + (-4 if right_half else 4), top + 14, label, weight="bold", size=11,
                          anchor="end" if right_half else "start"))
    for v in (lo + (hi - lo) * i / 4 for i in range(5)):
        body.append(_text(left - 6, sy(v) + 4, y_format.format(v), anchor="end", size=11))
    for x in xs:
        body.append(_text(sx(x), top + plot_h + 16, f"{x:,.0f}", anchor="middle", size=11))
    if x_label:
        body.append(_text(left + plot_w / 2, top + plot_h + 31, x_label, anchor="middle", size=11))
    return _svg(width, height, body)
