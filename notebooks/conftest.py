"""Notebooks run under nbmake (``addopts = --nbmake``); this hook also checks what the
run displayed, without running a notebook twice: each cell tagged ``figure`` must show
exactly one ``image/png`` and no cell a bare Figure repr (tests/notebook_checks.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.notebook_checks import figure_problems  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not getattr(item, "nbmake", False):
        return (yield)
    from nbmake import nb_run

    runs = []
    original = nb_run.NotebookRun.execute

    def execute(self):
        result = original(self)
        runs.append(result)
        return result

    nb_run.NotebookRun.execute = execute
    try:
        outcome = yield
    finally:
        nb_run.NotebookRun.execute = original
    assert runs, "nbmake ran no notebook: cannot check its figures (nbmake's NotebookRun changed?)"
    if runs[0].error is None:
        problems = figure_problems(runs[0].nb)
        assert not problems, f"{Path(item.filename).name}: " + "; ".join(problems)
    return outcome
