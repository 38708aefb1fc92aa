"""The report's busiest resources (results._busiest_links) are what sorting every link
that moved bytes gives: the same names, kinds, utilizations and order, ties included."""

from __future__ import annotations

import pytest

from simulator import load_scenario
from simulator.build import build
from simulator.engine import run
from simulator.results import TOP_RESOURCES, Utilization, _busiest_links

from .conftest import REPO_ROOT


def _every_link_sorted(sim, window):
    start = sim.edge_bytes_at_window_start
    moved = sim.network.edge_bytes() - (0.0 if start is None else start)
    rows = [Utilization(f"{u}->{v}", sim.cluster.graph.edges[u, v]["link"],
                        float(moved[i] / (sim.network.capacity[i] * window)))
            for i, (u, v) in enumerate(sim.network.edges) if moved[i] > 0]
    rows.sort(key=lambda r: (-round(r.utilization, 12), r.resource))
    return rows[:TOP_RESOURCES]


@pytest.mark.parametrize("path", ["ring_4x4_ib100.yaml", "ps_4x4_10gbe.yaml", "pcie_8gpu_server.yaml"])
def test_the_busiest_links_are_the_first_of_every_link_sorted(path):
    sim = build(load_scenario(REPO_ROOT / "scenarios" / path))
    run(sim)
    warmup = sim.scenario.simulation.warmup_iterations
    timeline = sim.timelines[0]
    window = timeline.iteration_end[-1] - timeline.iteration_start[warmup]
    expected = _every_link_sorted(sim, window)
    assert len(expected) == TOP_RESOURCES  # enough links moved bytes for the cut to matter
    assert _busiest_links(sim, window) == expected
