"""Draw a cluster graph: a layered picture of servers, NICs and the fabric.

Layers, top to bottom: spine switches, leaf (or single) switches, NICs, CPUs (and
parameter-server hosts), PCIe switches, GPUs, NVSwitch. Servers stand side by side, each
in its own column block; inside a block, GPUs are evenly spaced and every upper layer is
spread in the order of its nodes' neighbours below, so a switch sits above its GPUs.
Each duplex link is drawn once, colored by its link kind and labeled with its speed per
direction, in one unit everywhere: GB/s (gigabytes per second; a 100 Gb/s NIC is
12.5 GB/s), the unit the legend names; links within one layer (NVLink between GPUs, QPI
between sockets) are drawn as arcs so they do not hide each other. Text is at least 8 pt
and the figure is sized so that it is readable at the size it is saved (``dpi=120``).

Uses only :class:`matplotlib.figure.Figure` (no pyplot), so it works headless.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import networkx as nx
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch
from matplotlib.path import Path

LAYER_OF_KIND = {
    "spine": 6,
    "switch": 5,
    "nic": 4,
    "cpu": 3,
    "ps_host": 3,
    "pcie_switch": 2,
    "gpu": 1,
    "nvswitch": 0,
}
NODE_COLORS = {
    "switch": "#d62728",
    "nic": "#ff7f0e",
    "cpu": "#1f77b4",
    "ps_host": "#17becf",
    "pcie_switch": "#8c8c8c",
    "gpu": "#76b900",
    "nvswitch": "#2ca02c",
}
LINK_COLORS = {"pcie": "#7f7f7f", "nvlink": "#4d8f00", "qpi": "#9467bd", "network": "#1f77b4"}
_BLOCK_GAP = 1.0
_AUTO_LABEL_LIMIT = 160  # draw edge labels automatically up to this many links


class _DisplayFigure(Figure):
    """Shown once, as a PNG, when it is a Jupyter cell's value (no pyplot needed)."""

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=72)
        return buffer.getvalue()


def _natural(name: Hashable) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def _layer(graph: nx.DiGraph[Any], node: Hashable) -> int:
    data = graph.nodes[node]
    kind = data.get("kind", "")
    if kind == "switch" and data.get("tier") == "spine":
        return LAYER_OF_KIND["spine"]
    return LAYER_OF_KIND.get(kind, 3)


SPEED_UNIT = "GB/s"
_LABEL_PT, _NODE_PT, _SERVER_PT = 8, 8.5, 11


def speed_label(bandwidth: float, link: str = "", links: int = 1, unit: bool = False) -> str:
    """One direction's speed in GB/s (the same unit for every kind of link): ``'12.5'``
    for a 100 Gb/s NIC, ``'50 x2'`` for two ganged links; ``unit=True`` appends
    ``' GB/s'``. ``link`` (the kind) is accepted for compatibility and not used."""
    text = f"{bandwidth / 1e9:.3g}" + (f" {SPEED_UNIT}" if unit else "")
    return f"{text} x{links}" if links > 1 else text


def layered_positions(graph: nx.DiGraph[Any]) -> dict[Hashable, tuple[float, float]]:
    """x, y of every node: y by layer, x by server block (see the module docstring)."""
    blocks: dict[str, dict[int, list[Hashable]]] = defaultdict(lambda: defaultdict(list))
    fabric: dict[int, list[Hashable]] = defaultdict(list)
    for node in sorted(graph.nodes, key=_natural):
        server = graph.nodes[node].get("server")
        layer = _layer(graph, node)
        (blocks[server][layer] if server is not None else fabric[layer]).append(node)

    pos: dict[Hashable, tuple[float, float]] = {}

    def spread(nodes: list[Hashable], layer: int, start: float, width: float) -> None:
        """Place ``nodes`` evenly over [start, start + width], ordered by the mean x of
        their already placed neighbours (name order breaks ties)."""
        def key(node: Hashable) -> tuple[float, list[object]]:
            xs = [pos[n][0] for n in graph.successors(node) if n in pos]
            return (sum(xs) / len(xs) if xs else float("inf"), _natural(node))

        for i, node in enumerate(sorted(nodes, key=key)):
            pos[node] = (start + (i + 0.5) * width / len(nodes), float(layer))

    start = 0.0
    for server in sorted(blocks, key=_natural):
        layers = blocks[server]
        width = float(max(len(nodes) for nodes in layers.values()))
        for layer in sorted(layers):  # bottom up: GPUs first, then what sits above them
            if layer == LAYER_OF_KIND["nvswitch"]:
                continue
            spread(layers[layer], layer, start, width)
        if LAYER_OF_KIND["nvswitch"] in layers:
            spread(layers[LAYER_OF_KIND["nvswitch"]], LAYER_OF_KIND["nvswitch"], start, width)
        start += width + _BLOCK_GAP
    total = max(start - _BLOCK_GAP, 1.0)
    for layer in sorted(fabric):
        spread(fabric[layer], layer, 0.0, total)
    return pos


def _curve(
    p: tuple[float, float], q: tuple[float, float], bend: float, at: float = 0.5
) -> tuple[Path, tuple[float, float]]:
    """A quadratic Bezier from p to q whose middle bulges ``bend`` (signed, to the left
    of p -> q) sideways; returns the path and its point at parameter ``at``."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    length = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    cx, cy = (x0 + x1) / 2 - dy / length * 2 * bend, (y0 + y1) / 2 + dx / length * 2 * bend
    path = Path([(x0, y0), (cx, cy), (x1, y1)], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
    w0, w1, w2 = (1 - at) ** 2, 2 * at * (1 - at), at**2
    return path, (w0 * x0 + w1 * cx + w2 * x1, w0 * y0 + w1 * cy + w2 * y1)


def draw_cluster(
    graph: nx.DiGraph[Any],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    edge_labels: bool | None = None,
) -> Figure:
    """Draw ``graph`` (a built cluster) and return the figure.

    ``ax``: draw into these axes (their figure is returned); by default a new figure
    sized to the cluster. ``edge_labels``: label links with their speed; by default
    only when there are at most 160 links. Save with
    ``fig.savefig("cluster.png")``.
    """
    pos = layered_positions(graph)
    xs = [x for x, _ in pos.values()] or [0.0]
    fig: Figure
    if ax is None:
        fig = _DisplayFigure(figsize=(min(max(9.0, 1.3 * (max(xs) - min(xs) + 2) + 2.0), 60.0), 9.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        parent = ax.figure  # a Figure, or a SubFigure whose root figure is returned
        fig = parent if isinstance(parent, Figure) else parent.figure
    pairs = {tuple(sorted((u, v), key=_natural)) for u, v in graph.edges}
    links = sorted(pairs, key=lambda e: [_natural(n) for n in e])
    if edge_labels is None:
        edge_labels = len(links) <= _AUTO_LABEL_LIMIT

    lowest = min((y for _, y in pos.values()), default=0.0)
    for u, v in links:
        data = graph.edges[u, v]
        kind = data.get("link", "pcie")
        a, b = (u, v) if pos[u][0] <= pos[v][0] else (v, u)
        (x0, y0), (x1, y1) = pos[a], pos[b]
        # Links within the GPU layer (NVLink) arc below it, longer ones lower. Labels
        # sit 40% of the way up a link, so links crossing mid-way keep theirs apart.
        bend = -min(1.5, 0.15 + 0.2 * (x1 - x0)) if y0 == y1 == LAYER_OF_KIND["gpu"] else 0.0
        at = 0.5 if y0 == y1 else (0.4 if y0 < y1 else 0.6)
        path, mid = _curve(pos[a], pos[b], bend, at)
        lowest = min(lowest, y0 + bend)
        links_n = int(data.get("links", 1))
        ax.add_patch(
            PathPatch(path, facecolor="none", edgecolor=LINK_COLORS.get(kind, "black"), lw=0.8 + 0.6 * links_n,
                      alpha=0.75, zorder=1)
        )
        if edge_labels:
            ax.text(*mid, speed_label(float(data["bandwidth"]), kind, links_n), fontsize=_LABEL_PT, ha="center",
                    va="center", zorder=3, color=LINK_COLORS.get(kind, "black"),
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})

    for kind, color in NODE_COLORS.items():
        nodes = [n for n, d in graph.nodes(data=True) if d.get("kind") == kind]
        if nodes:
            ax.scatter([pos[n][0] for n in nodes], [pos[n][1] for n in nodes], s=900, c=color, zorder=2,
                       edgecolors="black", linewidths=0.6)
    for node, (x, y) in pos.items():
        server = graph.nodes[node].get("server")
        label = str(node)[len(server) + 1 :] if server and str(node).startswith(f"{server}.") else str(node)
        ax.text(x, y, label, fontsize=_NODE_PT, ha="center", va="center", zorder=4)

    servers: dict[str, list[float]] = defaultdict(list)
    for node, (x, _) in pos.items():
        if graph.nodes[node].get("server") is not None:
            servers[graph.nodes[node]["server"]].append(x)
    bottom = lowest
    for server, sx in servers.items():
        ax.text((min(sx) + max(sx)) / 2, bottom - 0.75, server, fontsize=_SERVER_PT, ha="center", va="center",
                weight="bold")

    handles = [Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in NODE_COLORS.items()
               if any(d.get("kind") == k for _, d in graph.nodes(data=True))]
    handles += [Line2D([], [], color=c, label=k) for k, c in LINK_COLORS.items()
                if any(d.get("link") == k for _, _, d in graph.edges(data=True))]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=_LABEL_PT + 1, frameon=False,
                  title=f"link labels: {SPEED_UNIT}\nper direction" if edge_labels else None,
                  title_fontsize=_LABEL_PT + 1)
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(bottom - 1.1, max((y for _, y in pos.values()), default=0.0) + 0.6)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig
