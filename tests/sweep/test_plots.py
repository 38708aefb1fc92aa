"""Plots return Figures whose drawn data are the numbers in the results."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from simulator import ClusterSimError, load_scenario, plots, run_sweep, simulate

from .conftest import SMALL_BASE, small_sweep

SWEEP = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4], "training.strategy": ["ring_allreduce", "parameter_server"]}})


@pytest.fixture(scope="module")
def table():
    return run_sweep(SWEEP, executor="serial", cache=False, progress=False)


def test_speedup_plot_has_the_ideal_line_and_the_speedups(table):
    fig = plots.speedup_plot(table, hue="training.strategy")
    assert isinstance(fig, Figure)
    ax_speedup, ax_eff = fig.axes[:2]
    lines = {line.get_label(): line for line in ax_speedup.get_lines()}
    assert list(lines["ideal"].get_xdata()) == [2, 4, 8] == list(lines["ideal"].get_ydata())
    ring = table[table["training.strategy"] == "ring_allreduce"].sort_values("total_gpus")
    assert np.allclose(lines["strategy=ring_allreduce"].get_ydata(), ring["speedup"])
    eff = {line.get_label(): line for line in ax_eff.get_lines()}
    assert np.allclose(eff["strategy=ring_allreduce"].get_ydata(), ring["scaling_efficiency"])


def test_breakdown_bars_stack_to_the_iteration_time(table):
    fig = plots.breakdown_plot(table, by=["cluster.nodes", "training.strategy"])
    ax = fig.axes[0]
    n = len(table)
    assert len(ax.patches) == 3 * n
    tops = [max(p.get_y() + p.get_height() for p in ax.patches if abs(p.get_x() + p.get_width() / 2 - i) < 0.1)
            for i in range(n)]
    assert np.allclose(tops, table["iteration_time_s"] * 1e3)
    assert ax.get_xticklabels()[0].get_text() == "nodes=1, strategy=ring_allreduce"


def test_utilization_heatmap_shows_links_and_servers(table):
    matrix = plots.utilization_matrix(table, by=["cluster.nodes", "training.strategy"])
    assert matrix.shape[1] == 6
    assert "ps0.nic0->switch0" in matrix.index  # the PS NIC: the busiest link of PS runs
    ps = table[table["training.strategy"] == "parameter_server"].iloc[0]
    label = f"nodes={ps['cluster.nodes']}, strategy=parameter_server"
    ranked = {ps[f"utilization.{r}.resource"]: ps[f"utilization.{r}.utilization"] for r in range(1, 6)}
    assert matrix.loc["ps0.nic0->switch0", label] == ranked["ps0.nic0->switch0"]
    assert np.nanmax(matrix.to_numpy()) <= 1.0 + 1e-9
    assert isinstance(plots.utilization_heatmap(table), Figure)


def test_sweep_heatmap_cells_are_the_metric(table):
    matrix = plots.sweep_matrix(table, "cluster.nodes", "training.strategy", "iteration_time_s")
    assert matrix.shape == (2, 3)
    row = table[(table["cluster.nodes"] == 2) & (table["training.strategy"] == "parameter_server")]
    assert matrix.loc["parameter_server", 2] == row["iteration_time_s"].iloc[0]
    fig = plots.sweep_heatmap(table, "cluster.nodes", "training.strategy", "iteration_time_s")
    assert len(fig.axes[0].texts) == 6
    with pytest.raises(ClusterSimError, match="no column 'cluster.nodez'"):
        plots.sweep_heatmap(table, "cluster.nodez", "training.strategy")


def test_timeline_plot_draws_one_iteration_per_gpu_and_link():
    scenario = load_scenario(SMALL_BASE, ["training.strategy=parameter_server", "simulation.warmup_iterations=1"])
    result = simulate(scenario, record_timeline=True)
    fig = plots.timeline_plot(result, max_links=3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:2] == ["n0.gpu0 compute", "n0.gpu0 sync"] and len(labels) == 5
    assert ax.get_xlim()[1] == pytest.approx(result.iteration_time_s * 1e3)
    with pytest.raises(ClusterSimError, match="record_timeline=True"):
        plots.timeline_plot(simulate(scenario))


def test_plots_accept_results_lists():
    results = [simulate(load_scenario(SMALL_BASE, [f"cluster.nodes={n}"])) for n in (1, 2)]
    fig = plots.speedup_plot(results)
    ideal = [line for line in fig.axes[0].get_lines() if line.get_label() == "ideal"][0]
    assert list(ideal.get_xdata()) == [2, 4]
