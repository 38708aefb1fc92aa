"""The ``simulate`` report as data (lines and tables), printed through rich, or written
directly where rich would write plain text.

Off a terminal (a pipe, a file, a test's capture) rich prints no colour or style: its
tables are then box characters around cells padded to the widest, which this module
writes itself, byte for byte as rich does (``tests/test_cli_plain.py`` compares them),
without importing rich (a twentieth of an 8-GPU ``clustersim simulate``). Anything rich
would render differently falls back to rich: a colour terminal or forced colour,
Jupyter, Windows, an encoding other than UTF-8, text that rich reads as markup or emoji
codes, characters outside printable ASCII, and anything wider than the console.
"""

from __future__ import annotations

import builtins
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Line:
    """One line of text: ``parts`` as (text, bold). ``markup``: a plain string as rich
    reads it (markup, emoji codes and highlighting; wrapped at the console's width),
    else a Text printed as it is (soft-wrapped)."""

    parts: list[tuple[str, bool]]
    markup: bool = False


@dataclass
class Grid:
    """A rich Table (default box, padding and justification) of string cells."""

    columns: list[tuple[str, str]]  # (header, justify: "left" or "right")
    rows: list[tuple[str, ...]] = field(default_factory=list)
    title: str | None = None
    show_header: bool = True
    bold_first: bool = False  # the first column in bold (no header: the labels)


Block = Line | Grid


def print_blocks(blocks: list[Block], console: Console | None = None) -> None:
    """Print ``blocks`` as rich would (on ``console``, or a new one), directly where
    the output is plain text."""
    if console is None:
        width = plain_width()
        text = None if width is None else plain_text(blocks, width)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        from rich.console import Console  # rich takes ~50 ms to import: only when it renders

        console = Console()
    print_rich(console, blocks)


def print_rich(console: Console, blocks: list[Block]) -> None:
    from rich.table import Table
    from rich.text import Text

    for block in blocks:
        if isinstance(block, Line):
            if block.markup:  # (highlighting only colours: off a colour terminal it is skipped)
                console.print("".join(text for text, _ in block.parts), highlight=console.color_system is not None)
            elif len(block.parts) == 1 and block.parts[0][1]:
                console.print(Text(block.parts[0][0], style="bold"), soft_wrap=True)
            else:
                console.print(Text.assemble(*((text, "bold") if bold else text for text, bold in block.parts)),
                              soft_wrap=True)
            continue
        table = Table(title=block.title, show_header=block.show_header)
        for i, (header, justify) in enumerate(block.columns):
            style = "bold" if block.bold_first and i == 0 else None
            if block.show_header:
                table.add_column(header, justify=justify, style=style)  # type: ignore[arg-type]
            else:
                table.add_column(justify=justify, style=style)  # type: ignore[arg-type]
        for row in block.rows:
            table.add_row(*row)
        console.print(table)


def plain_width() -> int | None:
    """The width rich's console would have where it writes plain text (as rich finds it:
    COLUMNS, else the first standard stream that is a terminal, else 80), or None where
    rich would style its output or its environment is not the plain one."""
    env = os.environ
    if sys.platform == "win32" or "FORCE_COLOR" in env or "TTY_COMPATIBLE" in env or hasattr(builtins, "get_ipython"):
        return None  # (Windows consoles, forced colour, an IPython shell or Jupyter: rich's own ways)
    out = sys.stdout
    try:
        if out is None or out.isatty() or not (getattr(out, "encoding", None) or "utf-8").lower().startswith("utf"):
            return None
    except (AttributeError, ValueError):
        return None
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns) or None
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):  # not a terminal
            pass
    return 80


def _plain(text: str, markup: bool) -> bool:
    """Whether rich prints ``text`` unchanged: printable ASCII, and where rich reads it as
    markup (a str), no tag ("[") or emoji code (":name:") and no space to strip at either end."""
    return text.isascii() and text.isprintable() and not (markup and ("[" in text or text.count(":") > 1
                                                                       or text != text.strip()))


def plain_text(blocks: list[Block], width: int) -> str | None:
    """What rich prints for ``blocks`` off a terminal at ``width`` columns, or None where
    it may print anything else (then rich prints it)."""
    out = []
    for block in blocks:
        if isinstance(block, Line):
            text = "".join(part for part, _ in block.parts)
            if not _plain(text, block.markup) or (block.markup and len(text) > width):
                return None
            out.append(text)
            continue
        lines = _grid_lines(block, width)
        if lines is None:
            return None
        out += lines
    return "".join(line + "\n" for line in out)


def _grid_lines(grid: Grid, width: int) -> list[str] | None:
    """A rich Table of ``grid`` that fits ``width`` (its title too): the default box
    (heavy head; square without a header), one space of padding on either side."""
    cells = [[header for header, _ in grid.columns]] if grid.show_header else []
    cells += [list(row) for row in grid.rows]
    if not grid.rows or any(len(row) != len(grid.columns) or not all(_plain(text, True) for text in row)
                            for row in cells):
        return None  # (an empty table: rich draws it)
    widths = [max([len(row[i]) for row in cells], default=0) + 2 for i in range(len(grid.columns))]
    total = sum(widths) + len(widths) + 1
    title = grid.title
    if total > width or (title is not None and (not _plain(title, True) or len(title) > total)):
        return None

    def row_line(row: list[str], bar: str) -> str:
        padded = [f" {text.rjust(w - 2) if justify == 'right' else text.ljust(w - 2)} "
                  for text, w, (_, justify) in zip(row, widths, grid.columns)]
        return bar + bar.join(padded) + bar

    lines = []
    if title is not None:
        left = (total - len(title)) // 2
        lines.append(" " * left + title + " " * (total - len(title) - left))
    rules = ["━" * w for w in widths] if grid.show_header else ["─" * w for w in widths]
    if grid.show_header:
        lines.append("┏" + "┳".join(rules) + "┓")
        lines.append(row_line(cells[0], "┃"))
        lines.append("┡" + "╇".join(rules) + "┩")
        body = cells[1:]
    else:
        lines.append("┌" + "┬".join(rules) + "┐")
        body = cells
    lines += [row_line(row, "│") for row in body]
    lines.append("└" + "┴".join("─" * w for w in widths) + "┘")
    return lines
