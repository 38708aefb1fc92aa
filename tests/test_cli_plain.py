"""The simulate report written without rich off a terminal is byte for byte what rich
prints (simulator.cli.plain), and everything rich would print differently goes to rich."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from simulator import load_scenario, simulate
from simulator.cli.plain import Grid, Line, plain_text, plain_width, print_blocks, print_rich
from simulator.cli.simulate import calibration_blocks, report_blocks

from .conftest import REPO_ROOT


def rich_text(blocks, width: int) -> str:
    out = io.StringIO()
    print_rich(Console(file=out, width=width), blocks)
    return out.getvalue()


@pytest.fixture(scope="module")
def reports():
    cases = {"ps": ["training.strategy=parameter_server", "training.parameter_servers.count=2"],
             "detailed": ["simulation.mode=detailed"], "default": []}
    small = ["cluster.nodes=2", "cluster.gpus_per_node=4", "cluster.server.gpus_per_switch=null",
             "simulation.iterations=2", "simulation.warmup_iterations=1"]
    found = {name: report_blocks(simulate(load_scenario(None, small + extra)), "a-source.yaml")
             for name, extra in cases.items()}
    path = REPO_ROOT / "scenarios" / "pcie_8gpu_server.yaml"
    found["example"] = report_blocks(simulate(load_scenario(path)), str(path))
    return found


@pytest.mark.parametrize("width", [80, 200, 66])
def test_reports_are_what_rich_prints(reports, width):
    for name, blocks in reports.items():
        text = plain_text(blocks, width)
        assert text is not None, name
        assert text == rich_text(blocks, width), name


def test_a_report_wider_than_the_console_goes_to_rich(reports):
    assert plain_text(reports["example"], 40) is None


CALIBRATION = {"profile": "probe.json", "layers_calibrated": 3, "layer_times": "measured", "layers_estimated": 2,
               "estimated_layer_names": ["fc", "pool"], "device": "V100 (matched)", "optimizer_step": "measured",
               "communication": "estimated"}


@pytest.mark.parametrize("blocks", [
    calibration_blocks(CALIBRATION),
    calibration_blocks(None),
    [Grid([("a", "left"), ("bb", "right")], [("", "1"), ("long cell here", "")], title="t")],
    [Grid([("a", "right"), ("b", "left")], [("x", "y")], title="a title longer than the table is wide")],
    [Grid([("a", "left")], [("[bold]x[/bold]",)])],
    [Grid([("a", "left")], [(":thumbs_up: ok:",)])],
    [Grid([("a", "left")], [("trailing ",)])],
    [Grid([("a", "left")], [("caf\u00e9",)])],
    [Grid([("a", "left")], [])],
    [Line([("[bold]not markup in a Text[/bold] ", False), ("bold", True)])],
    [Line([("a str: [b]markup[/b]", False)], markup=True)],
    [Line([("x" * 100, False)], markup=True)],
    [Line([("x" * 100, True)])],
])
def test_plain_text_is_rich_or_none(blocks):
    for width in (80, 30):
        text = plain_text(blocks, width)
        assert text is None or text == rich_text(blocks, width)


def test_markup_emoji_and_wide_text_go_to_rich():
    assert plain_text([Grid([("a", "left")], [("[bold]x",)])], 80) is None
    assert plain_text([Grid([("a", "left")], [(":smile:",)])], 80) is None
    assert plain_text([Grid([("a", "left")], [("caf\u00e9",)])], 80) is None
    assert plain_text([Line([("x" * 81, False)], markup=True)], 80) is None
    assert plain_text([Line([("x" * 81, False)])], 80) == "x" * 81 + "\n"  # (soft-wrapped: as it is)


def test_the_width_is_the_one_rich_finds(monkeypatch, capsys):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for columns in ("57", "120"):
        monkeypatch.setenv("COLUMNS", columns)
        assert plain_width() == Console().width == int(columns)
    monkeypatch.delenv("COLUMNS")
    assert plain_width() == Console().width
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plain_width() is None


def test_printed_blocks_are_written_once_whole(reports, capsys, monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    print_blocks(reports["example"])
    assert capsys.readouterr().out == rich_text(reports["example"], 80)
    monkeypatch.setenv("COLUMNS", "30")  # too narrow: rich prints it
    print_blocks(reports["example"])
    assert capsys.readouterr().out == rich_text(reports["example"], 30)
