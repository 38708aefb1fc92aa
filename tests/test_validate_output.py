"""``clustersim validate`` prints a rich table on a terminal, like the other commands, and
plain columns when its output goes to a pipe or a file (issue 17, item 8)."""

from __future__ import annotations

from rich.console import Console

from simulator.cli import validate as validate_cli

from .conftest import REPO_ROOT
from .test_cli import run_main


def _cases(tmp_path):
    rows = (REPO_ROOT / "scenarios" / "validation" / "published_cases.csv").read_text().splitlines(keepends=True)
    cases = tmp_path / "cases.csv"
    # two published cases and one that cannot run, with markup-like text in its row
    cases.write_text("".join(rows[:3]) + "bad[red],t,iteration_time_s,1.0,nope[bold].yaml\n")
    return cases, [row.split(",")[0] for row in rows[1:3]]


def test_validate_on_a_terminal_prints_a_rich_table(capsys, monkeypatch, tmp_path):
    cases, published = _cases(tmp_path)
    monkeypatch.setattr(validate_cli, "Console",
                        lambda: Console(force_terminal=True, width=200, color_system=None))
    code, out, err = run_main(capsys, "validate", str(cases), "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert "measured vs predicted: 3 cases" in lines[0]
    header = next(line for line in lines if line.split()[:2] == ["case", "metric"])
    assert header.split()[2:] == ["measured", "predicted", "rel.", "err"]
    assert "─" in out  # drawn by rich, not the plain table's header ("rel.err")
    for case in published:
        row = next(line for line in lines if line.lstrip().startswith(case))
        assert row.rstrip().endswith("%")
    bad = next(line for line in lines if line.lstrip().startswith("bad[red] "))
    assert bad.split()[-3:] == ["-", "-", "error"]  # the row; its message follows the table
    assert any(line.startswith("bad[red]: ") and "nope[bold].yaml" in line for line in lines)  # not markup
    assert any(line.startswith("cases: 2 simulated, 1 failed") for line in lines)


def test_validate_off_a_terminal_prints_plain_columns(capsys, monkeypatch, tmp_path):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # rich would take either for a terminal
        monkeypatch.delenv(name, raising=False)
    cases, published = _cases(tmp_path)
    code, out, err = run_main(capsys, "validate", str(cases), "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["case", "metric", "measured", "predicted", "rel.err"]
    assert "─" not in out and "\x1b" not in out
    assert [line.split()[0] for line in lines[1:3]] == published
    assert lines[3].startswith("bad[red] ") and "error: " in lines[3]
    assert "cases: 2 simulated, 1 failed" in out
