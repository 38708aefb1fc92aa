"""Reuse between runs in one process: a run's cluster survives its one-GPU baseline
(a sweep alternates the two), within the bounds of what is kept."""

from __future__ import annotations

import pytest

from simulator import build as build_module
from simulator import load_scenario
from simulator.build import build, forget_shared_clusters


def test_a_cluster_outlives_its_one_gpu_baseline():
    forget_shared_clusters()
    scenario = load_scenario(None, ["cluster.nodes=2", "cluster.gpus_per_node=4"])
    first = build(scenario).cluster
    build(scenario.single_gpu())  # the baseline's cluster, built in between
    assert build(scenario).cluster is first  # not rebuilt: graph, routes and solutions reused


def test_the_clusters_kept_are_the_most_recent_within_the_bounds(monkeypatch):
    forget_shared_clusters()
    monkeypatch.setattr(build_module, "KEEP_LAST", 2)
    clusters = [build(load_scenario(None, [f"cluster.nodes={n}"])).cluster for n in (1, 2, 3)]
    assert build_module._LAST == [clusters[2], clusters[1]]
    monkeypatch.setattr(build_module, "KEEP_LAST_UP_TO_NODES", clusters[0].graph.number_of_nodes())
    build(load_scenario(None, ["cluster.nodes=1"]))
    assert build_module._LAST == [clusters[0]]  # the others together are over the node bound
    forget_shared_clusters()
    assert build_module._LAST == []


@pytest.fixture(autouse=True)
def _cold_afterwards():
    yield
    forget_shared_clusters()
