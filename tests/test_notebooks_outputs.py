"""The notebooks as committed: numbered titles, no stored outputs (the figures are made
when they run, so they never go stale), figure cells tagged - and the check that CI
applies to every executed notebook (notebooks/conftest.py) catches what issue 17 saw."""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import REPO_ROOT
from .notebook_checks import figure_problems

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_numbered_teaches_and_is_stored_without_outputs(path):
    nb = nbformat.read(path, 4)
    title = nb.cells[0].source.splitlines()[0]
    assert re.match(rf"# {int(path.name[:2])}\. \S", title), title
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Question" in prose and "Physics" in prose and "read" in prose.lower()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"
    figures = [c for c in code if "figure" in c.metadata.get("tags", [])]
    assert figures
    for cell in figures:  # a figure is the cell's value: shown once, not assigned away
        last = cell.source.strip().splitlines()[-1]
        assert not re.match(r"^\w+\s*=", last) and "plt.show" not in cell.source, cell.source


def _cell(outputs, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "outputs": outputs, "source": ""}


PNG = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure size 640x480 with 1 Axes>"}}
BARE = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 1000x400 with 2 Axes>"}}


def test_figure_check_catches_bare_reprs_missing_and_double_figures():
    assert figure_problems({"cells": [_cell([PNG], ["figure"])]}) == []
    assert figure_problems({"cells": [_cell([BARE], ["figure"])]})  # 01-03 before: no picture
    assert figure_problems({"cells": [_cell([PNG, PNG], ["figure"])]})  # 04 before: shown twice
    assert figure_problems({"cells": [_cell([PNG])]})  # an untagged figure
    assert figure_problems({"cells": [_cell([])]})  # no figure at all
