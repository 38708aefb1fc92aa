"""The resolved view of a scenario (:mod:`simulator.resolved`, issue #16 item 2).

It specifies that the view's facts are the catalog's, the zoo's and the scenario's
(GPU and model entries, GPUs, batches, iterations, the strategy that runs, links in
bytes/s and seconds); that it cannot be changed once made; that the build phase makes
one, keeps it on the built simulation and looks the GPU and the model up once for the
whole build; and that the functions which take a view (memory, hardware, per-layer
costs) look nothing up again when handed one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from simulator import catalog, load_scenario, zoo
from simulator.build import build, rank_compute_costs
from simulator.hardware import server_params
from simulator.layer_report import layer_rows
from simulator.memory import check_fits, estimate_scenario
from simulator.resolved import Resolved, resolve, resolved

from .conftest import REPO_ROOT

EXAMPLES = sorted(p for p in (REPO_ROOT / "scenarios").glob("*.yaml") if not p.name.startswith("llm_"))


def test_the_examples_are_found():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_facts_are_the_catalogs_the_zoos_and_the_scenarios(path):
    s = load_scenario(path)
    c, w = s.cluster, s.workload
    view = resolve(s)
    assert view.scenario is s
    assert view.gpu == catalog.get_gpu(c.gpu)
    assert view.model == zoo.get_model(w.model, sequence_length=w.sequence_length)
    assert view.total_gpus == c.nodes * c.gpus_per_node
    assert view.batch_per_gpu == w.batch_per_gpu
    assert view.global_batch == c.nodes * c.gpus_per_node * w.batch_per_gpu
    assert view.warmup_iterations == s.simulation.warmup_iterations
    assert view.run_iterations == s.simulation.warmup_iterations + s.simulation.iterations
    assert view.strategy_name == s.training.strategy  # every example runs on more than one GPU
    assert view.nic_bandwidth == c.nic.resolved_bandwidth_gbps * 1e9 / 8
    assert view.nic_latency == c.nic.resolved_latency_us * 1e-6
    pcie = catalog.pcie_link_for_gen(c.server.pcie_generation or view.gpu.pcie_gen)
    assert view.pcie_bandwidth == pcie.bandwidth_bytes_per_s
    latency_us = c.server.pcie_latency_us if c.server.pcie_latency_us is not None else pcie.latency_us
    assert view.pcie_latency == latency_us * 1e-6
    assert server_params(s) == server_params(view)


def test_one_gpu_synchronizes_nothing_except_under_parameter_servers():
    one = load_scenario(None, ["training.strategy=ring_allreduce"]).single_gpu()
    assert resolve(one).strategy_name == "none"
    ps = load_scenario(None, ["training.strategy=parameter_server"]).single_gpu()
    assert resolve(ps).strategy_name == "parameter_server"


def test_units_are_converted():
    s = load_scenario(None, ["cluster.nic.link=null", "cluster.nic.bandwidth_gbps=100", "cluster.nic.latency_us=2",
                             "training.parameter_servers.nic_bandwidth_gbps=40", "workload.layer_overhead_us=5",
                             "cluster.server.pcie_latency_us=1.5"])
    view = resolve(s)
    assert view.nic_bandwidth == pytest.approx(12.5e9)
    assert view.nic_latency == pytest.approx(2e-6)
    assert view.ps_nic_bandwidth == pytest.approx(5e9)
    # microseconds at 1530 MHz, on the default scenario's V100 PCIe (1380 MHz): x 1530 / 1380
    assert view.gpu.peak_clock_mhz == 1380 and view.layer_overhead_s == pytest.approx(5e-6 * 1530 / 1380)
    assert view.pcie_latency == pytest.approx(1.5e-6)
    assert resolve(load_scenario(None)).ps_nic_bandwidth is None  # the workers' NIC


def test_the_view_cannot_be_changed():
    view = resolve(load_scenario(None))
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'total_gpus'"):
        view.total_gpus = 3  # type: ignore[misc]


def test_resolved_passes_a_view_through_and_resolves_a_scenario():
    s = load_scenario(None)
    view = resolve(s)
    assert resolved(view) is view
    assert isinstance(resolved(s), Resolved) and resolved(s).scenario is s


@pytest.fixture
def lookups(monkeypatch):
    """Counts of catalog GPU and zoo model look-ups from here on."""
    counts = {"gpu": 0, "model": 0}
    get_gpu, get_model = catalog.get_gpu, zoo.get_model

    def counting_gpu(*args, **kwargs):
        counts["gpu"] += 1
        return get_gpu(*args, **kwargs)

    def counting_model(*args, **kwargs):
        counts["model"] += 1
        return get_model(*args, **kwargs)

    monkeypatch.setattr(catalog, "get_gpu", counting_gpu)
    monkeypatch.setattr(zoo, "get_model", counting_model)
    return counts


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_build_looks_the_gpu_and_the_model_up_once(path, lookups):
    s = load_scenario(path)
    lookups.update(gpu=0, model=0)  # loading validated the scenario against the catalog
    sim = build(s)
    assert lookups == {"gpu": 1, "model": 1}
    assert sim.scenario is sim.resolved.scenario is s
    assert sim.model is sim.resolved.model
    assert sim.strategy_name == sim.resolved.strategy_name


def test_a_view_is_not_looked_up_again(lookups):
    s = load_scenario(None, ["workload.conv_algorithm=auto"])
    view = resolve(s)
    assert view.model is view.model  # looked up once, when first asked for
    lookups.update(gpu=0, model=0)
    check_fits(view)
    estimate_scenario(view)
    server_params(view)
    rank_compute_costs(view)
    assert lookups == {"gpu": 0, "model": 0}


def test_layer_report_looks_up_once(lookups):
    s = load_scenario(None)
    lookups.update(gpu=0, model=0)
    rows = layer_rows(s)
    assert lookups == {"gpu": 1, "model": 1}
    assert len(rows) == len(zoo.get_model(s.workload.model).layers) + 1  # and the optimizer step
