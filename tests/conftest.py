"""Shared test helpers: tiny hand-built topologies with closed-form answers."""

from __future__ import annotations

import os
from pathlib import Path

# The suite tests the sources, whatever `clustersim accelerate` built on this machine
# (tests/test_compiled.py checks a build against the golden results); set it to 0 to
# run the suite on a matching build. Set before anything imports simulator.
os.environ.setdefault("CLUSTERSIM_PURE_PYTHON", "1")

import networkx as nx
import pytest
import simpy

from simulator.network import Network
from topologies import add_duplex_link

REPO_ROOT = Path(__file__).resolve().parent.parent


def star(n_hosts: int, bandwidth: float, latency: float, prefix: str = "h") -> nx.DiGraph:
    """``n_hosts`` hosts each joined to one switch by a link of ``bandwidth`` and
    ``latency``: every host-to-host route crosses two links."""
    graph = nx.DiGraph()
    for i in range(n_hosts):
        add_duplex_link(graph, f"{prefix}{i}", "sw", bandwidth=bandwidth, latency=latency, link="network")
    return graph


@pytest.fixture(scope="session")
def dev_set_validation() -> dict[str, object]:
    """``validate`` of every dev-set file (``benchmarks/accuracy_validation.py``'s
    DEV_SET), keyed by path relative to the repository, made once per test session: the
    accuracy ratchet and the golden-results check read the same run."""
    from simulator.validation import validate

    paths = ["scenarios/validation/published_cases.csv", "scenarios/validation/training_cases.csv",
             "scenarios/validation/collectives/cases.csv", "scenarios/validation/llm_cases.csv"]
    return {p: validate(REPO_ROOT / p) for p in paths}


@pytest.fixture
def env() -> simpy.Environment:
    return simpy.Environment()


def run_flows(env: simpy.Environment, network: Network, starts: list[tuple[float, str, str, float]]) -> list[float]:
    """Start flows ``(at, src, dst, bytes)`` and return each one's completion time."""
    finished = [float("nan")] * len(starts)

    def launcher(i: int, at: float, src: str, dst: str, nbytes: float):
        yield env.timeout(at)
        yield network.transfer(src, dst, nbytes)
        finished[i] = env.now

    for i, spec in enumerate(starts):
        env.process(launcher(i, *spec))
    env.run()
    return finished
