"""Plots return Figures whose drawn data are the numbers in the results, that can be
read (text inside the figure, units on value axes, no legend over a title, axes that
grow with their rows) and that never average silently over a column not on the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from simulator import ClusterSimError, load_scenario, plots, run_sweep, simulate
from tests.figure_checks import assert_labelled, assert_readable

from .conftest import SMALL_BASE, small_sweep

SWEEP = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4],
                                    "training.strategy": ["ring_allreduce", "parameter_server"]}})


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
    assert ax_speedup.get_ylabel() == "speedup (x one GPU)" and ax_speedup.get_xlabel() == "GPUs (count)"
    for ax in (ax_speedup, ax_eff):
        assert_labelled(ax, x_unit=True, y_unit=True)
    assert_readable(fig)


def test_breakdown_bars_stack_to_the_iteration_time(table):
    fig = plots.breakdown_plot(table, by=["cluster.nodes", "training.strategy"])
    ax = fig.axes[0]
    n = len(table)
    parts = [c for c in ("compute_s", "interference_s", "bucket_copy_s", "exposed_communication_s", "input_wait_s",
                         "idle_s")
             if f"breakdown.{c}" in table]
    assert len(ax.patches) == len(parts) * n  # horizontal bars, one row per configuration
    ends = [max(p.get_x() + p.get_width() for p in ax.patches if abs(p.get_y() + p.get_height() / 2 - i) < 0.1)
            for i in range(n)]
    assert np.allclose(ends, table["iteration_time_s"] * 1e3)
    assert ax.get_yticklabels()[0].get_text() == "nodes=1, strategy=ring_allreduce"
    assert_labelled(ax, x_unit=True, y_unit=False)
    assert ax.get_xlabel() == "time per iteration (ms)"
    assert_readable(fig)


def many_rows(table, n=96):
    """``n`` configurations: the table's rows repeated with a varying batch column."""
    rows = pd.concat([table] * (n // len(table) + 1), ignore_index=True).iloc[:n].copy()
    rows["workload.batch_per_gpu"] = range(n)
    return rows


def test_breakdown_stays_readable_with_many_rows(table):
    fig = plots.breakdown_plot(many_rows(table))
    assert fig.get_figheight() > 0.25 * 96  # grows with the rows
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == 96
    assert_readable(fig, min_axes_inches=3)


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


def test_utilization_heatmap_marks_resources_left_out_of_a_run_apart_from_idle(table):
    bounds = plots.utilization_bounds(table, by=["cluster.nodes", "training.strategy"])
    matrix = plots.utilization_matrix(table, by=["cluster.nodes", "training.strategy"])
    fig = plots.utilization_heatmap(table, by=["cluster.nodes", "training.strategy"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == matrix.size  # every cell annotated
    missing = [(r, c) for r in matrix.index for c in matrix.columns if np.isnan(matrix.loc[r, c]) and bounds[c] > 0]
    assert missing  # some resource is outside some run's top five
    assert sum(t.startswith("<=") for t in texts) == len(missing)  # "at most x%", not a color of the scale
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == len(missing)
    for c in matrix.columns:  # a left-out resource is at most as busy as the run's last listed one
        listed = matrix[c].dropna()
        assert bounds[c] <= listed.max() + 1e-12
    assert_labelled(ax, x_unit=False, y_unit=False)
    assert "%" in fig.axes[1].get_ylabel()  # the colorbar
    assert_readable(fig)


def test_utilization_bounds_know_short_lists_are_complete():
    frame = pd.DataFrame({"run": [0], "utilization.1.resource": ["a->b"], "utilization.1.kind": ["network"],
                          "utilization.1.utilization": [0.5], "utilization.2.resource": [None],
                          "utilization.2.kind": [None], "utilization.2.utilization": [np.nan], "scenario": ["s"]})
    assert plots.utilization_bounds(frame)["s"] == 0.0  # fewer than the top N listed: the rest carried nothing
    full = frame.assign(**{"utilization.2.resource": ["c->d"], "utilization.2.kind": ["network"],
                           "utilization.2.utilization": [0.3]})
    assert plots.utilization_bounds(full)["s"] == 0.3  # a tie at 30% may have been cut


def test_sweep_heatmap_cells_are_the_metric(table):
    matrix = plots.sweep_matrix(table, "cluster.nodes", "training.strategy", "iteration_time_s")
    assert matrix.shape == (2, 3)
    row = table[(table["cluster.nodes"] == 2) & (table["training.strategy"] == "parameter_server")]
    assert matrix.loc["parameter_server", 2] == row["iteration_time_s"].iloc[0]
    fig = plots.sweep_heatmap(table, "cluster.nodes", "training.strategy", "iteration_time_s")
    assert len(fig.axes[0].texts) == 6
    assert fig.axes[1].get_ylabel() == "iteration time (s)"
    assert_labelled(fig.axes[0], x_unit=False, y_unit=False)
    assert_readable(fig)
    with pytest.raises(ClusterSimError, match="no column 'cluster.nodez'"):
        plots.sweep_heatmap(table, "cluster.nodez", "training.strategy")


def test_speedup_refuses_to_average_over_columns_not_on_the_plot(table):
    with pytest.raises(plots.PlotError, match=r"differ in training\.strategy \(2 values\)"):
        plots.speedup_plot(table)  # ring and PS at the same GPU count
    with pytest.raises(ClusterSimError, match="--hue"):
        plots.speedup_plot(table)
    fig = plots.speedup_plot(table, average=True)
    assert "mean over strategy" in fig.get_suptitle()
    mean = table.groupby("total_gpus")["speedup"].mean()
    line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "simulated")
    assert np.allclose(line.get_ydata(), mean)


def test_speedup_facets_one_row_per_value(table):
    fig = plots.speedup_plot(table, facet="training.strategy")
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[::2]] == ["Speedup - strategy=parameter_server",
                                                        "Speedup - strategy=ring_allreduce"]
    for ax in fig.axes:
        assert_labelled(ax, x_unit=True, y_unit=True)
    assert_readable(fig)


def test_heatmap_refuses_to_average_unless_asked(table):
    with pytest.raises(plots.PlotError, match=r"training\.strategy"):
        plots.sweep_heatmap(table, "cluster.nodes", "cluster.gpus_per_node")
    fig = plots.sweep_heatmap(table, "cluster.nodes", "cluster.gpus_per_node", "iteration_time_s", agg="max")
    assert "max over strategy" in fig.get_suptitle()
    values = sorted(float(t.get_text()) for t in fig.axes[0].texts)
    expected = sorted(table.groupby("cluster.nodes")["iteration_time_s"].max())
    assert np.allclose(values, expected, rtol=1e-2)


def test_replications_are_averaged_and_said_so():
    frame = run_sweep(small_sweep(axes={"grid": {"cluster.nodes": [1, 2]}}, replications=2,
                                  set=["variability.iteration_cv=0.05"]),
                      executor="serial", cache=False, progress=False)
    fig = plots.speedup_plot(frame)
    assert "mean of 2 replications" in fig.get_suptitle()


def test_timeline_plot_draws_one_iteration_per_gpu_and_link():
    scenario = load_scenario(SMALL_BASE, ["training.strategy=parameter_server", "simulation.warmup_iterations=1"])
    result = simulate(scenario, record_timeline=True)
    fig = plots.timeline_plot(result, max_links=3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:2] == ["n0.gpu0 compute", "n0.gpu0 sync"]
    assert ax.get_xlim()[1] == pytest.approx(result.iteration_time_s * 1e3)
    assert_labelled(ax, x_unit=True, y_unit=False)
    assert_readable(fig)
    with pytest.raises(ClusterSimError, match="record_timeline=True"):
        plots.timeline_plot(simulate(scenario))


def test_parameter_server_timeline_shows_the_servers_and_their_links():
    scenario = load_scenario(SMALL_BASE, ["training.strategy=parameter_server", "simulation.warmup_iterations=1",
                                          "training.parameter_servers.count=2"])
    result = simulate(scenario, record_timeline=True)
    labels = [t.get_text() for t in plots.timeline_plot(result, max_links=2).axes[0].get_yticklabels()]
    assert "ps0 aggregation" in labels and "ps1 aggregation" in labels
    for server in ("ps0", "ps1"):  # both directions of each server's NIC, however small max_links
        assert any(label.startswith(f"switch0->{server}.nic0") for label in labels), labels
        assert any(label.startswith(f"{server}.nic0->switch0") for label in labels), labels
    bottleneck = result.utilization[0]
    if bottleneck.kind == "network":
        assert any(label.startswith(bottleneck.resource) and "%" in label for label in labels)


def test_plots_accept_results_lists():
    results = [simulate(load_scenario(SMALL_BASE, [f"cluster.nodes={n}"])) for n in (1, 2)]
    fig = plots.speedup_plot(results)
    ideal = [line for line in fig.axes[0].get_lines() if line.get_label() == "ideal"][0]
    assert list(ideal.get_xdata()) == [2, 4]


def test_figures_show_once_in_jupyter_as_png(table):
    from IPython.core.formatters import PNGFormatter

    fig = plots.breakdown_plot(table)
    png = PNGFormatter()(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_parity_plot_separates_units_and_draws_error_bands():
    from simulator.validation import validation_plot

    df = pd.DataFrame({
        "source": ["a", "a", "b", "b"],
        "metric": ["throughput_samples_per_s", "throughput_samples_per_s", "collective_time_s", "iteration_time_s"],
        "measured": [1000.0, 20000.0, 1e-4, 0.2], "predicted": [1050.0, 15000.0, 1.2e-4, 0.19],
        "error": [None] * 4,
    })
    fig = validation_plot(df)
    panels = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_xlabel() for ax in panels] == ["measured (samples/s)", "measured (s)"]
    for ax in panels:
        assert_labelled(ax, x_unit=True, y_unit=True)
        assert len(ax.collections) >= 2 + 1  # +-25% and +-10% bands, then the points
    throughput = panels[0]
    from matplotlib.collections import PathCollection

    assert sum(len(c.get_offsets()) for c in throughput.collections if isinstance(c, PathCollection)) == 2
    assert "50% within 10%" in throughput.get_title()
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "within 10%" in labels and "within 25%" in labels
    assert_readable(fig, min_axes_inches=2)
