"""The resolved view of a scenario: what the build phase derives from it once, for
every later phase to read instead of deriving it again.

:func:`resolve` looks the GPU up in the catalog (and the model in the zoo, when first
asked for), converts the cluster's links to bytes/s and seconds, and works out the
facts several modules need (GPUs, global batch, iterations run, the strategy that runs,
the layer-time model's efficiencies). :func:`simulator.build.build` makes one and
keeps it on the :class:`~simulator.built.BuiltSimulation` (``sim.resolved``); functions
that a caller may hand a bare scenario (:mod:`simulator.memory`,
:mod:`simulator.hardware`, :func:`simulator.build.rank_compute_costs`) take either and
resolve a scenario with :func:`resolved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from . import catalog, zoo
from .catalog import GPUSpec
from .compute import ComputeCosts, default_compute_efficiency, roofline_costs
from .scenario import Scenario


def running_strategy(scenario: Scenario) -> str:
    """The strategy that runs: the scenario's, except that one GPU synchronizes nothing
    ("none") unless under parameter servers, where the one-GPU baseline runs the same
    update path (push, server update, pull) as the N-GPU job, so the servers taking the
    optimizer step off the GPU is no source of speedup."""
    t = scenario.training
    return t.strategy if scenario.cluster.total_gpus > 1 or t.strategy == "parameter_server" else "none"


@dataclass(frozen=True)
class Resolved:
    """One scenario with its catalog entries looked up and its units converted
    (bytes, bytes/s, seconds). Raw settings are read from ``scenario``; what is derived
    from them is read here."""

    scenario: Scenario
    gpu: GPUSpec
    total_gpus: int
    batch_per_gpu: int
    global_batch: int  # samples per iteration over all GPUs (every accumulated micro-batch)
    warmup_iterations: int
    iterations: int  # measured ones, after the warm-up
    strategy_name: str  # what runs (see running_strategy)
    compute_efficiency: float  # the workload's, or the precision's default
    layer_overhead_s: float
    nic_bandwidth: float  # bytes/s of one worker NIC
    nic_latency: float  # s
    nic_transport: str  # how libraries drive the NICs: rdma, socket, "" (not known: no catalog link)
    ps_nic_bandwidth: float | None  # bytes/s of a dedicated server host's NIC (None: the workers')
    pcie_bandwidth: float  # bytes/s of one x16 PCIe link in the servers
    pcie_latency: float  # s

    @cached_property
    def model(self) -> zoo.Model:
        """The workload's zoo model, looked up when first asked for (a job that
        :mod:`simulator.llm` runs never asks)."""
        w = self.scenario.workload
        return zoo.get_model(w.model, sequence_length=w.sequence_length)

    @property
    def run_iterations(self) -> int:
        """Iterations the clock runs: warm-up and measured."""
        return self.warmup_iterations + self.iterations

    def roofline(self, batch: int | None = None, conv_algorithms: list[str | None] | None = None) -> ComputeCosts:
        """One rank's per-layer costs by the layer-time model from the GPU's datasheet,
        at ``batch`` samples (default: the scenario's) with ``conv_algorithms`` per layer."""
        w = self.scenario.workload
        return roofline_costs(
            self.model,
            self.gpu,
            precision=w.precision,
            batch=self.batch_per_gpu if batch is None else batch,
            compute_efficiency=self.compute_efficiency,
            memory_efficiency=w.memory_efficiency,
            layer_overhead_s=self.layer_overhead_s,
            optimizer=w.optimizer,
            conv_algorithms=conv_algorithms,
            kernel_fusion=w.kernel_fusion,
            fork_gradients=w.fork_gradients_style,
            activation_epilogues=w.activation_epilogues,
            optimizer_kernels=w.optimizer_kernels,
            optimizer_compiled=w.optimizer_compiled,
            host_dispatch_s=w.host_dispatch_us * 1e-6,
            host_sync_layers=w.host_sync_layers,
        )


def resolve(scenario: Scenario) -> Resolved:
    """The resolved view of ``scenario`` (the GPU looked up here, the model when first used)."""
    c, w, sim = scenario.cluster, scenario.workload, scenario.simulation
    gpu = catalog.get_gpu(c.gpu)
    server, ps_nic = c.server, scenario.training.parameter_servers.nic_bandwidth_gbps
    pcie = catalog.pcie_link_for_gen(server.pcie_generation or gpu.pcie_gen)
    pcie_latency_us = server.pcie_latency_us if server.pcie_latency_us is not None else pcie.latency_us
    return Resolved(
        scenario=scenario,
        gpu=gpu,
        total_gpus=c.total_gpus,
        batch_per_gpu=w.batch_per_gpu,
        global_batch=c.total_gpus * w.batch_per_gpu * scenario.training.gradient_accumulation_steps,
        warmup_iterations=sim.warmup_iterations,
        iterations=sim.iterations,
        strategy_name=running_strategy(scenario),
        compute_efficiency=w.compute_efficiency or default_compute_efficiency(w.precision, gpu.architecture),
        layer_overhead_s=per_kernel_overhead_s(gpu, w.layer_overhead_us),
        nic_bandwidth=c.nic.resolved_bandwidth_gbps * 1e9 / 8,
        nic_latency=c.nic.resolved_latency_us * 1e-6,
        nic_transport=c.nic.resolved_transport,
        ps_nic_bandwidth=None if ps_nic is None else ps_nic * 1e9 / 8,
        pcie_bandwidth=pcie.bandwidth_bytes_per_s,
        pcie_latency=pcie_latency_us * 1e-6,
    )


#: The SM clock (MHz) ``workload.layer_overhead_us`` is stated at: a V100 SXM2's boost, the
#: card of the rows the 20 us default was fitted on.
OVERHEAD_REFERENCE_CLOCK_MHZ = 1530.0


def per_kernel_overhead_s(gpu: GPUSpec, overhead_us: float) -> float:
    """Seconds each kernel costs on ``gpu`` beyond its work: ``overhead_us`` at the reference
    clock, scaled by reference / the GPU's sustained clock, since a kernel's fixed costs on
    the GPU (front-end launch, block dispatch, pipeline fill and drain, the last partial
    wave) are counted in SM cycles. A GPU without a catalog clock keeps ``overhead_us``.
    Chosen on the one-GPU dev set's cross-validation (README, "One GPU")."""
    clock = gpu.peak_clock_mhz
    if not clock:
        return overhead_us * 1e-6
    return overhead_us * 1e-6 * OVERHEAD_REFERENCE_CLOCK_MHZ / (clock * gpu.sustained_clock_ratio)


def resolved(scenario: Scenario | Resolved) -> Resolved:
    """``scenario``'s resolved view: itself if it is one, else made by :func:`resolve`."""
    return scenario if isinstance(scenario, Resolved) else resolve(scenario)
