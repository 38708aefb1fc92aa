"""Checks that a figure can be read: every drawn text inside the figure, none on top of
another where that hides it (legend over title), value axes labelled with a unit."""

from __future__ import annotations

import re

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

UNIT = re.compile(r"\(.*\S.*\)")


def drawn_texts(fig: Figure) -> list[Text]:
    """Texts that are drawn: titles, labels, annotations, legend entries and the tick
    labels of visible axes within their view limits."""
    texts: list[Text] = list(fig.texts)
    if getattr(fig, "_suptitle", None) is not None:
        texts.append(fig._suptitle)
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [*ax.texts, ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label]
            for axis, lo_hi in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
                lo, hi = sorted(lo_hi)
                for tick in axis.get_major_ticks():
                    if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                        texts += [tick.label1, tick.label2]
    return [t for t in texts if t is not None and t.get_visible() and t.get_text().strip()]


def render(fig: Figure):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def assert_readable(fig: Figure, min_axes_inches: float = 1.0) -> None:
    """Every drawn text inside the figure; titles not covered by a legend; every axes
    (colorbars aside) at least ``min_axes_inches`` tall and wide."""
    renderer = render(fig)
    box = fig.bbox.padded(1)
    for t in drawn_texts(fig):
        e = t.get_window_extent(renderer)
        assert box.contains(e.x0, e.y0) and box.contains(e.x1, e.y1), f"text outside the figure: {t.get_text()!r}"
    titles = [t for t in drawn_texts(fig)
              if t is getattr(fig, "_suptitle", None) or any(t is ax.title for ax in fig.axes)]
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        lb = legend.get_window_extent(renderer)
        for t in titles:
            assert not lb.overlaps(t.get_window_extent(renderer)), f"legend over the title {t.get_text()!r}"
    for ax in fig.axes:
        if ax.axison and not hasattr(ax, "_colorbar"):
            pos = ax.get_position()
            w, h = pos.width * fig.get_figwidth(), pos.height * fig.get_figheight()
            assert w >= min_axes_inches and h >= min_axes_inches, f"axes squeezed to {w:.2f} x {h:.2f} in"


def assert_labelled(ax, x_unit: bool, y_unit: bool) -> None:
    """Both axes labelled; where asked, the label names a unit in parentheses."""
    for label, unit in ((ax.get_xlabel(), x_unit), (ax.get_ylabel(), y_unit)):
        assert label.strip(), "an axis without a label"
        if unit:
            assert UNIT.search(label), f"no unit in the axis label {label!r}"
