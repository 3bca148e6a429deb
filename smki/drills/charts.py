"""The drill report's two charts, drawn with matplotlib: a timeline (Gantt) of the phases and steps against
their targets, and the devices recovered over time. Each is drawn once and saved twice, as SVG for the HTML
and as PNG for the PDF, so both show the same picture.

Drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no global
figure registry, no interactive backend, safe in a worker. The style is fixed here (font, hash salt, no
dates in the metadata, text never read as mathtext) so the same record gives the same bytes every time.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

KINDS = ("phase", "done", "failed", "skipped", "running")
COLOURS = {"phase": "#1f5fa8", "done": "#5b9bd5", "failed": "#c0392b", "skipped": "#b0b0b0", "running": "#e6a23c"}
LEGEND = {"phase": "phase", "done": "step done", "failed": "step failed", "skipped": "step skipped",
          "running": "not ended"}
TIMELINE_ROWS = 60   # a chart of more rows is unreadable; the step table lists them all
CURVE_POINTS = 2000  # more points than pixels across draw the same line
LABEL_CHARACTERS = 48
WIDTH_INCHES = 10.0
PNG_DPI = 150

# Set for every chart, at drawing and at saving: the bundled DejaVu Sans (present wherever matplotlib is),
# text kept as text in the SVG (searchable, small), and a record's "$" never taken for mathtext.
STYLE: dict[str, Any] = {"font.family": "DejaVu Sans", "font.size": 8, "svg.fonttype": "none",
                         "text.parse_math": False, "text.usetex": False, "axes.unicode_minus": False}


@dataclass(frozen=True)
class Bar:
    """One row of the timeline: a phase or a step, in minutes from the start of the drill."""

    label: str
    start: float
    end: float | None   # None: not ended when the record was taken
    target: float | None  # minutes allowed, from its start
    kind: str           # one of KINDS (a step's outcome, "phase", or "running")


@contextmanager
def _style(salt: str = "smki-drill") -> Iterator[None]:
    settings: Any = {**STYLE, "svg.hashsalt": salt}  # the stubs type rcParams' keys as literals; these are
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        # a name in a script DejaVu Sans lacks is drawn as boxes in the chart; the tables carry its text
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARACTERS else text[:LABEL_CHARACTERS - 1] + "\u2026"


def timeline(bars: Sequence[Bar], *, until: float) -> Figure:
    """Phases (dark) with their steps beneath them, each bar from its start to its end (to ``until`` if it
    has not ended), and its target as a dashed frame from the same start: a bar past its frame overran."""
    shown = list(bars[:TIMELINE_ROWS])
    hidden = len(bars) - len(shown)
    with _style():
        figure = Figure(figsize=(WIDTH_INCHES, 1.6 + 0.26 * max(len(shown), 1)), layout="constrained")
        axes = figure.add_subplot()
        span = max([until, *(b.end or 0 for b in shown), *((b.start + (b.target or 0)) for b in shown), 1e-3])
        for row, bar in enumerate(shown):
            end = until if bar.end is None else bar.end
            kind = "running" if bar.end is None and bar.kind != "skipped" else bar.kind
            width = max(end - bar.start, span / 400)  # an instant step still shows
            height = 0.7 if bar.kind == "phase" else 0.5
            axes.add_patch(Rectangle((bar.start, row - height / 2), width, height, facecolor=COLOURS[kind],
                                     edgecolor="none"))
            if bar.target is not None:
                axes.add_patch(Rectangle((bar.start, row - 0.4), bar.target, 0.8, facecolor="none",
                                         edgecolor="#333333", linestyle="--", linewidth=0.8))
        axes.set_xlim(min([0.0, *(b.start for b in shown)]), span * 1.02)
        axes.set_ylim(len(shown) - 0.5 if shown else 0.5, -0.5)
        axes.set_yticks(range(len(shown)),
                        [_label(b.label) if b.kind == "phase" else "   " + _label(b.label) for b in shown])
        for tick, bar in zip(axes.get_yticklabels(), shown, strict=True):
            if bar.kind == "phase":
                tick.set_fontweight("bold")
        axes.set_xlabel("minutes from the start of the drill")
        axes.grid(axis="x", linewidth=0.3)
        handles: list[Any] = [Patch(facecolor=COLOURS[k], label=LEGEND[k]) for k in KINDS
                              if any((("running" if b.end is None and b.kind != "skipped" else b.kind) == k)
                                     for b in shown)]
        handles.append(Patch(facecolor="none", edgecolor="#333333", linestyle="--", label="target"))
        figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
        title = "Phases and steps against their targets"
        if hidden:
            title += f" (first {len(shown)} rows; {hidden} more in the step table)"
        axes.set_title(title, fontsize=9)
        return figure


def recovery(points: Sequence[tuple[float, int]], *, affected: int | None, until: float) -> Figure:
    """Devices recovered against minutes from the start of the drill (to ``until``, its end), with the devices
    to recover as a line."""
    ordered = sorted(points)
    if len(ordered) > CURVE_POINTS:  # keep the first, the last, and evenly spaced ones between
        stride = math.ceil(len(ordered) / CURVE_POINTS)
        ordered = ordered[::stride] + ([ordered[-1]] if (len(ordered) - 1) % stride else [])
    with _style():
        figure = Figure(figsize=(WIDTH_INCHES, 3.6), layout="constrained")
        axes = figure.add_subplot()
        if ordered:
            axes.step([p[0] for p in ordered], [p[1] for p in ordered], where="post", color=COLOURS["phase"],
                      linewidth=1.4, label="devices recovered")
        else:
            axes.text(0.5, 0.5, "no devices recovered in this drill", transform=axes.transAxes, ha="center",
                      va="center", color="#666666")
        if affected:
            axes.axhline(affected, color="#333333", linestyle="--", linewidth=0.8, label="devices to recover")
        axes.set_xlim(min([0.0, *(p[0] for p in ordered)]), max([until, *(p[0] for p in ordered), 1e-3]) * 1.02)
        axes.set_ylim(bottom=0, top=max([affected or 0, *(p[1] for p in ordered), 1]) * 1.08)
        axes.set_xlabel("minutes from the start of the drill")
        axes.set_ylabel("devices")
        axes.grid(linewidth=0.3)
        if ordered or affected:
            axes.legend(loc="lower right", fontsize=7)
        axes.set_title("Devices recovered over time", fontsize=9)
        return figure


def to_svg(figure: Figure, salt: str) -> str:
    """The chart as an ``<svg>`` element to place inside an HTML page (no XML declaration or doctype).
    ``salt`` keeps the element ids of two charts on one page apart."""
    out = io.StringIO()
    with _style(salt):
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    return text[text.index("<svg"):]


def to_png(figure: Figure) -> bytes:
    out = io.BytesIO()
    with _style():
        figure.savefig(out, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return out.getvalue()
