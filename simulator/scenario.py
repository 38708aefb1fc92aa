"""The scenario schema: cluster + workload + training strategy + simulation settings.

Pydantic v2 models, frozen, unknown keys rejected, units in field names. Names that
refer to catalogs and registries (GPU, link, model, server layout, fabric) are checked
against them here, so every configuration error surfaces at load time with the field's
dotted path, before any simulation starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from topologies import FABRICS, SERVER_LAYOUTS, Dgx1Params, LeafSpineParams, NvSwitchParams, PcieTreeParams

from . import catalog, zoo
from .llm.parallel import ParallelismSpec, check_layout
from .schema_base import (  # noqa: F401 - re-exported: the schema's limits and bounds live there
    ALLOW_LARGE_ENV,
    DEFAULT_ITERATION_CV,
    LIMITS,
    MAX_GBPS,
    MAX_GBYTES_S,
    MAX_LATENCY_US,
    MAX_MIB,
    _Strict,
    check_limit,
    large_allowed,
)


def _known(kind: str, name: str, known: list[str]) -> str:
    if name not in known:
        from .errors import excerpt

        raise ValueError(f"unknown {kind} {excerpt(name)}; known: {', '.join(known)}")
    return name


class ServerSpec(_Strict):
    """How the GPUs inside one node are wired. Fields a layout does not use are
    rejected when set explicitly (`clustersim list topologies`)."""

    _section = "cluster.server"
    _limited = ("pcie_switches", "gpus_per_switch", "nics")

    layout: str = Field(
        default="pcie_tree",
        description="Server layout from `topologies`: pcie_tree (CPU sockets, PCIe switches, GPUs), dgx1 (8 V100 "
        "in NVLink hybrid cube mesh), nvswitch (DGX A100/H100 style all-to-all NVLink).",
    )
    pcie_switches: int | None = Field(
        default=None, ge=1, description=f"PCIe switches per node; GPUs spread evenly over them. Default: {PcieTreeParams.pcie_switches} "
        "(nvswitch: GPUs/2). "
        "At most 64 (see LIMITS)."
    )
    gpus_per_switch: int | None = Field(
        default=None, ge=1, description="GPUs under each PCIe switch; if given, must equal gpus_per_node / pcie_switches. "
        "At most 64."
    )
    sockets: int | None = Field(
        default=None, ge=1, le=2, description="CPU sockets joined by QPI/UPI; switches spread over them. "
        f"Default {PcieTreeParams.sockets} (nvswitch {NvSwitchParams.sockets})."
    )
    pcie_generation: Literal[3, 4, 5] | None = Field(
        default=None, description="PCIe generation of every x16 link in the server; default: the GPU's own generation."
    )
    pcie_latency_us: float | None = Field(
        default=None, ge=0, le=MAX_LATENCY_US, description="Latency of one PCIe hop in microseconds; default: the catalog's PCIe figure."
    )
    qpi_bandwidth_gbytes_s: float | None = Field(
        default=None, gt=0, le=MAX_GBYTES_S,
        description=f"Inter-socket link bandwidth per direction, GB/s; default {PcieTreeParams.qpi_bandwidth / 1e9:g} "
        "(two QPI 9.6 GT/s links).",
    )
    p2p: bool | None = Field(default=None, description="GPU peer-to-peer over PCIe; off: GPU-to-GPU copies are staged through host memory. Default: the GPU's (the catalog's pcie_p2p: off on the GeForce RTX 2080 Ti, 3080, 3090 and 4090).")
    gpudirect_rdma: bool = Field(default=True, description="GPUDirect RDMA; off: NIC traffic is staged through host memory.")
    nics: int | None = Field(
        default=None, ge=1, description=f"NICs per node (rails); default {PcieTreeParams.nics} (dgx1: {Dgx1Params.nics}, nvswitch: one "
        "per GPU). At most 64."
    )
    nic_placement: Literal["root", "switch"] | None = Field(
        default=None, description="NICs at the CPU root complex or under the PCIe switches; "
        f"default {PcieTreeParams.nic_placement} (nvswitch: {NvSwitchParams.nic_placement})."
    )
    nvlink_bandwidth_gbytes_s: float | None = Field(
        default=None, gt=0, le=MAX_GBYTES_S,
        description="Total NVLink bandwidth per GPU per direction, GB/s (NVLink layouts); default: the GPU's.",
    )

    @field_validator("layout")
    @classmethod
    def _layout_known(cls, v: str) -> str:
        return _known("server layout", v, sorted(SERVER_LAYOUTS))


class NICSpec(_Strict):
    """Each node's network interface. Give a catalog `link`, or a bandwidth, or both
    (explicit numbers override the link's)."""

    link: str | None = Field(default="10GbE", description="Link type from the catalog (`clustersim list links`), e.g. 10GbE, IB-EDR.")
    bandwidth_gbps: float | None = Field(
        default=None, gt=0, le=MAX_GBPS,
        description="Achievable bandwidth in Gb/s, each direction; default: the link's line rate x efficiency.",
    )
    latency_us: float | None = Field(
        default=None, ge=0, le=MAX_LATENCY_US,
        description="Latency of the cable from NIC to switch in microseconds; default: the link's figure.",
    )
    transport: Literal["rdma", "socket"] | None = Field(
        default=None, description="How the collective library drives the NICs: rdma (verbs: InfiniBand, RoCE) or "
        "socket (kernel TCP); the backend achieves a different fraction of the bandwidth on each. Default: the "
        "link's (none for a NIC given by bandwidth alone: the backend's general figure).",
    )

    @field_validator("link")
    @classmethod
    def _link_known(cls, v: str | None) -> str | None:
        return v if v is None else _known("link", v, catalog.list_links())

    @model_validator(mode="after")
    def _has_bandwidth(self) -> NICSpec:
        if self.link is None and (self.bandwidth_gbps is None or self.latency_us is None):
            raise ValueError("give a catalog `link`, or both `bandwidth_gbps` and `latency_us`")
        return self

    @property
    def resolved_bandwidth_gbps(self) -> float:
        if self.bandwidth_gbps is not None:
            return self.bandwidth_gbps
        return catalog.get_link(self.link).effective_gbps  # type: ignore[arg-type]

    @property
    def resolved_latency_us(self) -> float:
        if self.latency_us is not None:
            return self.latency_us
        return catalog.get_link(self.link).latency_us  # type: ignore[arg-type]

    @property
    def resolved_transport(self) -> str:
        """rdma, socket, or "" where neither this spec nor its link says."""
        if self.transport is not None:
            return self.transport
        return catalog.get_link(self.link).transport if self.link else ""


class FabricSpec(_Strict):
    """The network joining the nodes (and dedicated parameter-server hosts)."""

    _section = "cluster.fabric"
    _limited = ("nodes_per_leaf", "spines")

    topology: str = Field(
        default="single_switch",
        description="Fabric from `topologies`: single_switch, or leaf_spine / fat_tree (two levels, ECMP over spines).",
    )
    switch_latency_us: float = Field(default=0.5, ge=0, le=MAX_LATENCY_US, description="Forwarding delay of one switch in microseconds.")
    nodes_per_leaf: int | None = Field(default=None, ge=1, description="Servers under each leaf switch (leaf_spine).")
    spines: int | None = Field(default=None, ge=1, description=f"Spine switches (leaf_spine); default {LeafSpineParams.spines}.")
    oversubscription: float | None = Field(
        default=None, ge=1, le=1000, description="Leaf downlink / uplink bandwidth ratio (leaf_spine); "
        f"default {LeafSpineParams.oversubscription:g} (non-blocking)."
    )
    rails: bool | None = Field(default=None, description="Rail-optimized: NIC k of every server on rail-k leaves (leaf_spine).")

    @field_validator("topology")
    @classmethod
    def _fabric_known(cls, v: str) -> str:
        return _known("fabric", v, sorted(FABRICS))


class ClusterSpec(_Strict):
    """The hardware: identical nodes of GPUs joined by a fabric."""

    _section = "cluster"
    _limited = ("nodes", "gpus_per_node", "host_cores")

    nodes: int = Field(default=1, ge=1, description="Number of worker nodes (at most 16,384 and 65,536 GPUs in all, "
                       "unless --allow-large).")
    gpus_per_node: int = Field(default=1, ge=1, description="GPUs in each node; one data-parallel rank per GPU (at most 64).")
    gpu: str = Field(default="V100-PCIe-16GB", description="GPU model from the catalog (`clustersim list gpus`).")
    # Factories are lambdas, not the section classes: pydantic inspects a factory's signature,
    # and a model class's is built for it (a few ms of start-up over the schema's sections).
    server: ServerSpec = Field(default_factory=lambda: ServerSpec(), description="Layout of one node.")
    nic: NICSpec = Field(default_factory=lambda: NICSpec(), description="Each node's network interface.")
    fabric: FabricSpec = Field(default_factory=lambda: FabricSpec(), description="Network joining the nodes.")
    host_cores: int | None = Field(
        default=None,
        ge=1,
        description="CPU cores of each worker node, shared by its ranks' input pipelines (workload.data: real) and "
        "by parameter servers colocated on it (each takes training.parameter_servers.cores of them). Default: "
        "not modelled for servers, 5 per GPU for the input pipeline (DGX-1: 2 x 20-core Xeon E5-2698 v4 for 8 GPUs).",
    )

    @field_validator("gpu")
    @classmethod
    def _gpu_known(cls, v: str) -> str:
        return _known("GPU", v, catalog.list_gpus())

    @model_validator(mode="after")
    def _gpus_fit_switches(self) -> ClusterSpec:
        try:
            check_limit("cluster.total_gpus", self.total_gpus)
        except ValueError as exc:
            raise ValueError(f"nodes x gpus_per_node = {self.total_gpus:,} GPUs: {exc}") from None
        switches = self.server.pcie_switches or 1
        if self.server.layout == "pcie_tree" and self.gpus_per_node % switches:
            raise ValueError(
                f"gpus_per_node={self.gpus_per_node} cannot be spread evenly over server.pcie_switches={switches}"
            )
        per_switch = self.server.gpus_per_switch
        if per_switch is not None and per_switch * switches != self.gpus_per_node:
            raise ValueError(
                f"server.pcie_switches x server.gpus_per_switch = {switches} x {per_switch} "
                f"!= gpus_per_node = {self.gpus_per_node}"
            )
        return self

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


class WorkloadSpec(_Strict):
    """The model being trained and how each GPU runs it."""

    _section = "workload"
    _limited = ("batch_per_gpu", "sequence_length")

    model: str = Field(default="resnet50", description="Model from the zoo (`clustersim list models`).")
    # A field of its own, not a path in `model`: `model` stays a name (an enum for editors, a
    # column of results) and a path here resolves like calibration: (README "Bring your own model").
    model_file: str | None = Field(
        default=None,
        description="Path of a model file (YAML: layers with shapes, or per-layer FLOPs, parameters and "
        "activation sizes; README \"Bring your own model\") to train instead of a zoo model; relative paths "
        "resolve against the scenario file's folder. `model` becomes the file's model name.",
    )
    batch_per_gpu: int = Field(default=32, ge=1, description="Mini-batch per GPU (samples per iteration per rank).")
    precision: Literal["fp32", "tf32", "fp16", "bf16", "amp", "fp8"] = Field(
        default="fp32", description="Arithmetic precision; amp = fp16 compute with fp32 master weights and gradients; "
        "fp8 = Transformer Engine's recipe (dense layers' GEMMs at the fp8 peak, the rest as bf16; Hopper)."
    )
    sequence_length: int | None = Field(
        default=None, ge=1, description="Tokens per sequence for transformer models; default: the model's own (BERT 128, GPT-2 1024)."
    )
    optimizer: Literal["sgd", "momentum", "adam"] = Field(
        default="momentum", description="Optimizer whose update step runs after synchronization (sets its memory traffic)."
    )
    optimizer_kernels: Literal["multi_tensor", "per_tensor", "elementwise"] = Field(
        default="multi_tensor",
        description="How the framework writes the optimizer step (`simulator.optimizer_step`): multi_tensor = one "
        "launch updates every tensor (apex/PyTorch fused and foreach optimizers, DeepSpeed, Megatron); per_tensor = "
        "one fused kernel per parameter tensor (TensorFlow's Apply ops per variable, MXNet, Caffe); elementwise = "
        "the update as element-wise ops per tensor (Google's BERT AdamWeightDecayOptimizer, PyTorch's for-loop "
        "optimizers): more kernels and bytes; under graph_compiler xla its arithmetic is fused, its write-backs "
        "to TensorFlow 1 reference variables are not. Under precision amp it also says where the conversions "
        "between fp32 master weights and fp16 copies run: two multi-tensor passes at the step (multi_tensor, as "
        "apex's O2), else a cast per parameter tensor beside each dense layer, forward and backward.",
    )
    compute_efficiency: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Fraction of the GPU's peak FLOP/s that large, well-shaped conv/matmul kernels reach (smaller "
        "and ragged shapes lose more: `simulator.kernel_efficiency`); default 0.85 on CUDA cores (fp32, and fp16 "
        "on cards without tensor cores; times the FMA issue share where a scheduler feeds 32 or more FP32 lanes, "
        "compute.fma_issue_share), 0.50 on tensor cores (tf32, fp16, bf16, amp); for a transformer step (training.parallelism), a fitted share of the card's "
        "measured maximum achievable matmul rate (the catalog's matmul_efficiency).",
    )
    memory_efficiency: float = Field(
        default=0.8, gt=0, le=1, description="Fraction of the GPU's memory bandwidth that memory-bound kernels reach."
    )
    layer_overhead_us: float = Field(
        default=20.0, ge=0, le=MAX_LATENCY_US,
        description="Fixed cost per kernel launched on the GPU, microseconds at a 1530 MHz SM clock (a V100's): "
        "each catalog GPU's is scaled by 1530 / its sustained clock (`resolved.per_kernel_overhead_s`); a matrix "
        "layer launches one kernel forward and two backward.",
    )
    host_dispatch_us: float = Field(
        default=50.0, ge=0, le=MAX_LATENCY_US,
        description="The framework's host cost to issue one kernel, microseconds: the GPU cannot start a kernel "
        "before the host has issued it, so small batches come out latency-bound (simulator.host_dispatch). The "
        "default 50 is what all 18 leave-one-GPU-out folds of the one-GPU dev set pick, with MXNet's batch-1 to "
        "-128 runs in it (README, 'Small batches'); 0 leaves the host out (kernels cost layer_overhead_us each on "
        "the GPU, back to back). Applies to layer times the model computes, not to a measured profile's (which "
        "hold their host already) nor to the transformer step (training.parallelism).",
    )
    host_sync_layers: int = Field(
        default=0, ge=0, le=100_000,
        description="The framework's engine waits for the GPU to finish after every N layers it runs (forward and "
        "backward) and after each kernel of the optimizer step, so the host's issue time (host_dispatch_us) and the "
        "GPU's add up instead of overlapping (simulator.host_dispatch). MXNet's engine does: each bulk segment of up "
        "to MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN operators (15) ends in a wait in MXNet 1.x, about 3 (a segment ends "
        "before a third layer with parameters) in MXNet of 2016, and every imperative operator (its per-weight "
        "optimizer updates) waits. 0 = never: an asynchronous stream (PyTorch, TensorFlow, NVIDIA's MXNet with its "
        "asynchronous engine). Acts only where host_dispatch_us > 0: with no host cost there is nothing to wait for.",
    )
    kernel_fusion: Literal["none", "norm_activation"] = Field(
        default="none",
        description="Kernel fusion of the framework: none = every layer launches its own kernels (PyTorch eager, "
        "TensorFlow without XLA, Caffe, Torch7); norm_activation = a residual add and a ReLU that follow a batch "
        "norm run inside the norm's kernels (XLA, NVIDIA's MXNet ResNet-50 in fp16 with fused BN-add-ReLU): no "
        "launches and no write and read-back of their tensors.",
    )
    graph_compiler: Literal["none", "xla"] = Field(
        default="none",
        description="Whole-graph compiler: xla = TensorFlow's XLA auto-clustering (TF_XLA_FLAGS=--tf_xla_auto_jit=2, "
        "'XLA on' in NVIDIA's tables): backward runs as compiled clusters whose gradients leave only when a cluster "
        "ends, so their synchronization cannot start layer by layer (training.xla_release_points; "
        "NVIDIA/DeepLearningExamples#156 profiles no compute-communication overlap with XLA); none = gradients "
        "leave as backward produces them. Under xla a ReLU right after a convolution or dense layer runs in that "
        "layer's epilogue (no forward time of its own) and workload.fork_gradients defaults to fused; its batch-norm "
        "fusions are workload.kernel_fusion.",
    )
    fork_gradients: Literal["sum", "copy_add", "fused"] | None = Field(
        default=None,
        description="How the backward pass sums the gradients of a tensor several layers read (a residual block's "
        "input, an Inception module's input): sum = one kernel reads them all and writes the sum (PyTorch "
        "autograd, TensorFlow's AddN, MXNet, Caffe); copy_add = the first is copied and each other added in "
        "place, a kernel each (Lua Torch's nn.ConcatTable); fused = the sum runs inside the kernel that "
        "consumes it, reading the extra gradients only (XLA). Default: fused under workload.graph_compiler xla, "
        "sum otherwise.",
    )
    conv_algorithm: Literal["implicit_gemm", "precomputed_gemm", "fft", "winograd", "auto"] = Field(
        default="auto",
        description="Convolution algorithm of every conv layer (`simulator.algorithms`); a layer that cannot run it "
        "(winograd: 3x3 stride 1, Maxwell and later GPUs) falls back to implicit_gemm; auto = what cuDNN's autotuner "
        "picks: the fastest per layer whose workspace fits in the memory the rank leaves free.",
    )
    conv_algorithms: dict[str, Literal["implicit_gemm", "precomputed_gemm", "fft", "winograd"]] = Field(
        default_factory=dict, description="Per-layer algorithm overrides, layer name -> algorithm."
    )
    workspace: Literal["shared", "per_layer"] = Field(
        default="shared", description="Conv workspace: one buffer the size of the largest layer's, or one per layer."
    )
    check_memory: bool = Field(
        default=True, description="Refuse a scenario whose per-GPU memory estimate (`simulator.memory`) exceeds the GPU's."
    )
    data: Literal["synthetic", "real"] = Field(
        default="synthetic",
        description="synthetic: input tensors already on the GPU (tf_cnn_benchmarks' and most published scaling runs' "
        "default); real: every sample is decoded and augmented on the host CPU first (input pipeline, "
        "cluster.host_cores).",
    )
    input_ms_per_sample: float | None = Field(
        default=None,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="Host CPU time to decode and augment one sample on one core, milliseconds (workload.data: real). "
        "Default: 5.0 for image models (ImageNet JPEG decode + random-resized-crop + flip; see README), 0 for "
        "sequence models (pre-tokenized data).",
    )
    input_copy: Literal["hidden", "exposed"] = Field(
        default="hidden",
        description="How the batch reaches the GPU. hidden: made on the GPU (synthetic data) or prefetched into a "
        "second buffer while the GPU computes (tf.data prefetch_to_device, PyTorch's pinned DataLoader, DALI). "
        "exposed: copied from the node's host memory into the buffer the previous step read, so it waits for "
        "backward and forward waits for it; all GPUs of a node copy at once over the PCIe tree and socket link "
        "(MXNet's Module API of 2016-17; simulator/input_copy.py).",
    )
    measured_throughput_samples_per_s: float | None = Field(
        default=None,
        ge=1e-3,
        le=1e12,
        allow_inf_nan=False,
        description="Measured one-GPU training throughput (samples/s) of this model, GPU, batch and framework. "
        "Every per-layer forward/backward time and the optimizer step are scaled by one factor so that one GPU "
        "computes an iteration in batch_per_gpu / this; the layers keep their relative profile, so gradients "
        "still become ready in the right proportions. Only the scaling is then predicted.",
    )
    # Strong scaling keeps the global batch: a job measured on one GPU at batch 144 runs 36 per GPU
    # on four (MXNet's --batch-size is per machine). Fitting the factor at the measured batch keeps the
    # roofline's batch dependence (small batches fill a GPU less) instead of assuming it away.
    measured_throughput_batch: int | None = Field(
        default=None,
        ge=1,
        le=1_048_576,
        description="Batch at which measured_throughput_samples_per_s was measured on one GPU, when it is not "
        "batch_per_gpu (strong scaling: the one-GPU run took the whole global batch). The one scale factor is "
        "fitted at that batch and applied to the costs at batch_per_gpu. Default: batch_per_gpu.",
    )

    @property
    def fork_gradients_style(self) -> str:
        """``fork_gradients`` with its default resolved."""
        if self.fork_gradients is not None:
            return self.fork_gradients
        return "fused" if self.graph_compiler == "xla" else "sum"

    @property
    def optimizer_compiled(self) -> bool:
        """Whether a graph compiler fuses an element-wise optimizer step (XLA)."""
        return self.graph_compiler == "xla"

    @property
    def activation_epilogues(self) -> bool:
        """Whether a ReLU after a convolution or dense layer runs in its epilogue (XLA)."""
        return self.graph_compiler == "xla"

    @model_validator(mode="after")
    def _measured_batch_needs_throughput(self) -> WorkloadSpec:
        if self.measured_throughput_batch is not None and self.measured_throughput_samples_per_s is None:
            raise ValueError("measured_throughput_batch: says at which batch measured_throughput_samples_per_s "
                             "was measured, which is not given")
        return self

    @field_validator("model")
    @classmethod
    def _model_known(cls, v: str) -> str:
        return _known("model", v, zoo.list_models() + zoo.registered_models())

    @field_validator("model_file")
    @classmethod
    def _model_file_loaded(cls, v: str | None, info: ValidationInfo) -> str | None:
        # the load phase reads the file and sets `model` (simulator.loading.with_model_file)
        if v is not None and zoo.file_model_name(v) is None:
            raise ValueError("not loaded: scenarios naming a model file are loaded with simulator.load_scenario")
        if v is not None and "model" in info.data and zoo.file_model_name(v) != info.data["model"]:
            raise ValueError(f"names model {zoo.file_model_name(v)!r}, not {info.data['model']!r}")
        return v


class ParameterServerSpec(_Strict):
    """Parameter servers (used when training.strategy is parameter_server)."""

    _section = "training.parameter_servers"
    _limited = ("count", "cores", "staleness")

    count: int = Field(
        default=1, ge=1, description="Number of parameter servers; every gradient is sharded evenly over them (at most 4,096)."
    )
    placement: Literal["dedicated", "colocated"] = Field(
        default="dedicated",
        description="dedicated: CPU-only hosts on the fabric; colocated: server j runs on worker node j mod nodes.",
    )
    nic_bandwidth_gbps: float | None = Field(
        default=None, gt=0, le=MAX_GBPS, description="NIC bandwidth of dedicated server hosts in Gb/s; default: the workers' NIC."
    )
    aggregation_gbytes_per_s: float = Field(
        default=20.0, gt=0, le=MAX_GBYTES_S, description="Rate at which one server sums incoming gradients and applies the update, GB/s of gradient."
    )
    sharding: Literal["even", "round_robin", "size_balanced"] = Field(
        default="even",
        description="even: every tensor split over all servers (MXNet); round_robin: tensor b on server b mod k "
        "(TensorFlow); size_balanced: largest tensors first onto the least-loaded server.",
    )
    local_aggregation: bool = Field(
        default=False, description="Sum a node's gradients in host memory first and push once per node (MXNet local kvstore)."
    )
    sync: Literal["bsp", "asp", "ssp"] = Field(
        default="bsp",
        description="bsp: servers wait for every worker each iteration; asp: each push is applied on arrival and "
        "workers never wait for each other; ssp: as asp, but no worker runs more than `staleness` iterations "
        "ahead of the slowest.",
    )
    staleness: int = Field(default=2, ge=0, description="Iterations a worker may run ahead of the slowest one under ssp.")
    cores: int = Field(
        default=1,
        ge=1,
        description="CPU cores of each server that handle requests and aggregate (a contended resource: each "
        "request and each aggregation holds one core). A colocated server takes these from its node's "
        "cluster.host_cores when that is given.",
    )
    rpc_us: float = Field(
        default=0.0,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="Server CPU time per request, microseconds: every push and every pull of one bucket piece by "
        "one worker (gRPC / ZeroMQ / ps-lite message handling). 0 = free (the flow model alone).",
    )
    tensor_us: float = Field(
        default=0.0,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="Server CPU time per tensor in a request, microseconds (serialization and per-variable op "
        "dispatch); a zoo layer's parameters count as one tensor.",
    )
    transport_gbytes_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_GBYTES_S,
        allow_inf_nan=False,
        description="Payload one server core moves through its RPC stack, GB/s: every push it receives and every "
        "pull it sends costs bytes / this of one core (gRPC copies and (de)serialization). None = free (the "
        "network alone bounds the transfers).",
    )
    connection_gbps: float | None = Field(
        default=None,
        gt=0,
        le=MAX_GBPS,
        allow_inf_nan=False,
        description="The most one worker-server connection carries, Gb/s: a push or pull takes at least its bytes "
        "at this rate (one TCP stream of ps-lite/ZeroMQ or gRPC; iperf's single-stream figure). None = only "
        "the network bounds it.",
    )


def _usable_path(v: str | None) -> str | None:
    """A field naming another file: refused if empty or with a NUL byte (the file itself
    is read, and its path resolved, when the scenario is loaded or built)."""
    if v is not None and ("\0" in v or not v.strip()):
        raise ValueError("not a usable file path (empty, or with a NUL byte)")
    return v


class CollectivesSpec(_Strict):
    """The collective library allreduce strategies run on (`simulator.collectives`)."""

    backend: str = Field(
        default="nccl",
        description="Cost model of the collective library, a file in simulator/data/backends: nccl (launch and "
        "per-step latency by protocol, LL/LL128/Simple, NVLink rings per channel, achievable link bandwidth, "
        "host staging across sockets), gloo (TCP rings, route latency; GPU buffers through host memory), "
        "mpi (Horovod without NCCL: copy to host, ring between hosts, CPU sum, copy back), ideal (the flow "
        "model alone).",
    )
    protocol: Literal["auto", "LL", "LL128", "Simple"] = Field(
        default="auto", description="NCCL protocol (NCCL_PROTO); auto = per call, as NCCL's own cost model picks."
    )
    max_channels: int | None = Field(
        default=None, ge=1, le=64, description="Most rings (channels) to build (NCCL_MAX_NCHANNELS); default: the backend's."
    )
    # The backend's fitted figures vary 2-4x between machines (README, "Where the model is
    # weak"); a user who measured their own overrides them here.
    host_staging_gbytes_s: float | None = Field(
        default=None, gt=0, le=1000, description="GPU-to-GPU bandwidth (GB/s) of a hop through host memory (no P2P, or "
        "across the socket link) as measured on this machine; default: the backend's fitted figure.",
    )
    p2p_level: Literal["PXB", "PHB", "SYS"] | None = Field(
        default=None, description="How far apart two GPUs may be and still copy peer to peer (NCCL_P2P_LEVEL): PXB "
        "through PCIe switches only, PHB also through one CPU's root complex, SYS also across the socket link; "
        "hops beyond it are staged through host memory. Default: the backend's (nccl: PXB, NCCL's own default on "
        "Intel since 2.9 and on AMD with more than two GPUs since 2.23; NCCL 2.7-2.8 used PHB on Intel Skylake "
        "and later, 2.7-2.22 SYS on AMD). GPUs without PCIe P2P (GeForce) stage every such hop whatever the level.",
    )
    network_efficiency: float | None = Field(
        default=None, gt=0, le=1, description="Fraction of the NICs' catalog bandwidth the library achieves on this "
        "fabric (nccl-tests busbw / line rate); default: the backend's fitted figure.",
    )
    compute_interference: float | None = Field(
        default=None, ge=1, le=10, allow_inf_nan=False, description="How many times slower a GPU computes while a "
        "collective of the library runs on it (its kernels hold SMs and memory bandwidth), e.g. measured as a "
        "layer's time beside an allreduce over its time alone; default: the backend's fitted figure.",
    )
    net_connection_gbps: float | None = Field(
        default=None, ge=1e-3, le=MAX_GBPS, allow_inf_nan=False, description="Most one channel's connection across the network moves "
        "(Gb/s): a single TCP stream where the transport opens one socket per connection (NCCL's socket "
        "transport before 2.4.8, which also builds one ring per NIC before 2.4: set max_channels) on a network "
        "that caps a flow (AWS: 5 Gb/s per flow outside a cluster placement group, 10 inside); default: no limit.",
    )

    measured: str | None = Field(
        default=None, description="A saved nccl-tests all_reduce_perf output of this cluster (the job's world size "
        "on its hosts; the file's '# Rank' lines are checked against cluster): each bucket's allreduce then takes "
        "the measured out-of-place time, interpolated between measured sizes and alpha-beta fitted beyond them, in "
        "place of the collective model (simulator/measured_collectives.py). Relative paths resolve against the "
        "scenario file's folder. Allreduce strategies only.",
    )

    @field_validator("measured")
    @classmethod
    def _measured_path(cls, v: str | None) -> str | None:
        return _usable_path(v)

    @field_validator("backend")
    @classmethod
    def _backend_known(cls, v: str) -> str:
        from .collectives.backend import list_backends

        return _known("collective backend", v, list_backends())


class TrainingSpec(_Strict):
    """How data-parallel ranks synchronize gradients."""

    strategy: Literal[
        "ring_allreduce", "tree_allreduce", "halving_doubling_allreduce", "hierarchical_allreduce", "auto",
        "fastest", "parameter_server", "device_reduce",
    ] = Field(
        default="ring_allreduce",
        description="Gradient synchronization: an allreduce algorithm over all GPUs (ring, double binary tree, "
        "recursive halving-doubling, hierarchical; auto = per bucket size what the collective library picks "
        "itself (NCCL: ring or tree from its own cost model); fastest = per bucket size the fastest of them in "
        "this simulator's model of the topology), or sharded parameter servers, or device_reduce (one node: "
        "each gradient array summed on one GPU and copied back, MXNet's kvstore 'device').",
    )
    collectives: CollectivesSpec = Field(
        default_factory=lambda: CollectivesSpec(), description="Collective library of the allreduce strategies."
    )
    parameter_servers: ParameterServerSpec = Field(
        default_factory=lambda: ParameterServerSpec(), description="Parameter-server settings (parameter_server strategy only)."
    )
    parallelism: ParallelismSpec | None = Field(
        default=None,
        description="Transformer parallelism (tensor, pipeline, data with ZeRO, context, expert) for a "
        "transformer workload: when given, a step is simulated as Megatron-LM / FSDP run it "
        "(simulator.llm) instead of plain data parallelism.",
    )
    overlap: bool = Field(
        default=True, description="Start synchronizing a bucket as soon as its gradients are ready during backward."
    )
    gradient_accumulation_steps: int = Field(
        default=1,
        ge=1,
        le=4096,
        description="Micro-batches of workload.batch_per_gpu each rank runs per iteration, summing gradients, "
        "before they are synchronized once and the optimizer steps once (PyTorch DDP's no_sync, Horovod's "
        "backward_passes_per_step, DeepSpeed's gradient_accumulation_steps): the first n-1 run forward and "
        "backward without communication, the last one's backward synchronizes as usual. An iteration takes "
        "n x batch_per_gpu samples per GPU; memory is that of one micro-batch. Transformer parallelism "
        "(training.parallelism) sets its micro-batches through its global_batch instead.",
    )
    xla_release_points: int = Field(
        default=2,
        ge=1,
        le=1024,
        description="Under workload.graph_compiler xla: the evenly spaced points of backward at which gradients leave "
        "the compiled clusters (a bucket ready earlier waits for the next point; 1 = all at the end of backward, no "
        "overlap). Default: the value fitted on every source of the dev set (benchmarks/accuracy_training.py; "
        "cross-validated by leaving one source out); the horovod preset sets 1 (its allreduces wait for backward "
        "under XLA: NVIDIA/DeepLearningExamples#156).",
    )
    bucket_size_mib: float | None = Field(
        default=None,
        ge=0,
        le=MAX_MIB,
        description="Gradient bucket cap in MiB, filled in reverse layer order; 0 = one bucket per layer. "
        "Default: 25 for allreduce strategies (PyTorch DDP), 64 with horovod fusion (HOROVOD_FUSION_THRESHOLD), "
        "0 for parameter_server (one push per tensor).",
    )

    fusion: Literal["ddp_buckets", "horovod", "horovod_async"] = Field(
        default="ddp_buckets",
        description="How gradients are grouped: ddp_buckets (fixed buckets in reverse layer order, launched when "
        "full, PyTorch DDP); horovod (Horovod tensor fusion with a synchronous background loop: a cycle starts "
        "fusion_cycle_ms after the previous one started or when its allreduces have finished, whichever is later, "
        "and packs every gradient ready on all ranks into buffers of at most bucket_size_mib, run one after "
        "another; Horovod whose background thread waits for its GPU allreduces); horovod_async (every "
        "fusion_cycle_ms from the start of backward, what became ready since the last tick is packed into buffers "
        "of at most bucket_size_mib and queued, whatever is still running; Horovod whose completions are handled "
        "by a separate finalizer thread).",
    )
    fusion_cycle_ms: float = Field(
        default=5.0, ge=1e-3, le=1e4, description="Horovod cycle time (HOROVOD_CYCLE_TIME) in milliseconds (fusion: horovod, horovod_async)."
    )
    framework: str = Field(
        default="none",
        description="Framework preset (a file in simulator/data/frameworks, each number with its source): "
        "tensorflow_ps, tensorflow_replicated_nccl, tensorflow_collective, horovod, pytorch_ddp, "
        "tf_cnn_benchmarks_ps, mxnet_kvstore_device, mxnet_dist_sync, paddle, oneflow, deepspeed; none = no preset. It fills in the training "
        "fields this section leaves out; every field set explicitly wins.",
    )
    first_bucket_mib: float | None = Field(
        default=None,
        ge=0,
        le=MAX_MIB,
        allow_inf_nan=False,
        description="Cap of the first gradient bucket (the last layers' gradients) in MiB, ddp_buckets only "
        "(PyTorch DDP: 1 MiB, so communication starts early); default: bucket_size_mib.",
    )
    gradient_precision: Literal["fp32", "fp16", "compute"] | None = Field(
        default=None,
        description="Precision gradients travel in; default: the workload's (fp32 for fp32/tf32/amp, whose "
        "gradients are fp32; fp16 for fp16/bf16). compute: the precision the layers compute in, fp16 under amp "
        "and the workload's own otherwise (TensorFlow tf_cnn_benchmarks' replicated mode casts gradients to "
        "fp16 for the all-reduce when it runs in fp16: --compact_gradient_transfer, on by default).",
    )
    launch_overhead_us: float = Field(
        default=0.0,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="Framework CPU time to launch the synchronization of one bucket, microseconds (copying into "
        "the bucket, enqueueing): buckets are launched one after another by one thread, each this much later.",
    )
    negotiation_us_per_tensor: float = Field(
        default=0.0,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="Framework CPU time per gradient tensor before its bucket can launch, microseconds (Horovod's "
        "readiness negotiation through rank 0); a zoo layer's parameters count as one tensor.",
    )
    bucket_copies: bool = Field(
        default=True,
        description="An allreduce bucket of two or more gradient tensors is copied into one flat buffer before "
        "its collective and back out after it, on the GPU: PyTorch DDP (without gradient_as_bucket_view), apex "
        "DDP, Horovod's fusion buffer, DeepSpeed. Each copy reads and writes the bucket's bytes at the GPU's "
        "achievable memory bandwidth (workload.memory_efficiency); the copy in delays the bucket's launch and "
        "takes the GPU from backward, the copies out run before the optimizer step. false: gradients are "
        "reduced in place (one tensor per bucket, or a framework that reduces bucket views).",
    )

    @model_validator(mode="before")
    @classmethod
    def _framework_preset(cls, data: object) -> object:
        """Fill in the framework preset's defaults; fields given explicitly win."""
        if not isinstance(data, dict):
            return data
        if data.get("framework", "none") == "none":
            # The default preset sets nothing (tests/test_startup_imports.py): no need to parse
            # every preset file, about 25 ms of YAML on each start-up.
            return data
        from .frameworks import apply_preset

        try:
            return apply_preset(data)
        except ValueError as exc:
            raise ValueError(f"framework: {exc}") from None

    @model_validator(mode="after")
    def _accumulation_is_data_parallel(self) -> TrainingSpec:
        if self.gradient_accumulation_steps > 1 and self.parallelism is not None:
            raise ValueError(
                "gradient_accumulation_steps applies to plain data parallelism; with training.parallelism the "
                "micro-batches follow from parallelism.global_batch and parallelism.micro_batch")
        if self.collectives.measured is not None and self.parallelism is not None:
            raise ValueError(
                "collectives.measured times plain data parallelism's bucket allreduces; training.parallelism "
                "models its own collectives (tensor, pipeline, sharded data parallel)")
        return self

    @property
    def resolved_bucket_size_mib(self) -> float:
        if self.bucket_size_mib is not None:
            return self.bucket_size_mib
        if self.strategy == "parameter_server":
            return 0.0
        return 64.0 if self.fusion.startswith("horovod") else 25.0


class JitterSpec(_Strict):
    """Random variation of compute time, drawn per rank for every compute segment
    (forward, each backward segment between buckets, optimizer step)."""

    distribution: Literal["none", "normal", "lognormal", "uniform"] = Field(
        default="none", description="Distribution of the time multiplier, with mean 1."
    )
    cv: float = Field(
        default=0.0, ge=0, le=1,
        description="Coefficient of variation (std / mean) of the multiplier; needs a distribution other than none.",
    )

    @model_validator(mode="after")
    def _cv_needs_distribution(self) -> JitterSpec:
        if self.cv > 0 and self.distribution == "none":
            raise ValueError(
                f"cv={self.cv:g} has no effect with distribution none; set distribution (normal, lognormal or uniform)"
            )
        return self


class StragglerSpec(_Strict):
    """Occasional slow iterations of a rank (a noisy neighbour, thermal throttling)."""

    probability: float = Field(default=0.0, ge=0, le=1, description="Chance that a rank straggles in a given iteration.")
    slowdown: float = Field(default=2.0, ge=1, le=1000, description="Compute time multiplier of a straggling iteration.")


class VariabilitySpec(_Strict):
    """Differences between ranks. Any of these makes ranks differ, so the simulation
    follows every rank (detailed path)."""

    gpu_speed_factors: dict[int, float] = Field(
        default_factory=dict,
        description="Relative speed of given ranks (rank -> factor, 1 = nominal, 0.5 = half speed; from 0.001 to "
        "1000); others 1.",
    )
    jitter: JitterSpec = Field(default_factory=lambda: JitterSpec(), description="Random variation of compute time.")
    stragglers: StragglerSpec = Field(default_factory=lambda: StragglerSpec(), description="Occasional slow iterations.")
    iteration_cv: float = Field(
        default=DEFAULT_ITERATION_CV,
        ge=0,
        le=0.5,
        allow_inf_nan=False,
        description="Coefficient of variation of each rank's compute time per iteration (one normal draw per rank "
        "and iteration, mean 1). Synchronous jobs wait for the slowest of N ranks: the fast path uses the exact "
        "expected maximum of N draws (1 + cv x E[max of N standard normals]); the detailed path draws. Unlike "
        "`jitter` it keeps the fast path. Default 0.04: fitted on the multi-GPU dev set with the collective "
        "library's compute interference, on all sources (leave-one-source-out folds chose 0.02-0.06; "
        "benchmarks/accuracy_training.py); an effective figure that also carries scale losses not modelled one "
        "by one. 0 = a noise-free run.",
    )

    @field_validator("gpu_speed_factors", mode="before")
    @classmethod
    def _rank_keys(cls, v: Any) -> Any:
        """JSON (and a copied YAML mapping) spells rank keys as strings of digits."""
        if isinstance(v, dict):
            return {int(k) if isinstance(k, str) and k.isascii() and k.isdigit() and len(k) < 10 else k: f
                    for k, f in v.items()}
        return v

    @field_validator("gpu_speed_factors")
    @classmethod
    def _positive(cls, v: dict[int, float]) -> dict[int, float]:
        for rank, factor in v.items():
            if rank < 0 or factor <= 0:
                raise ValueError(f"rank {rank}: ranks must be >= 0 and speed factors > 0 (got {factor})")
            if not 1e-3 <= factor <= 1e3:
                raise ValueError(f"rank {rank}: speed factor {factor:g} is outside 0.001 to 1000")
        return v

    @property
    def active(self) -> bool:
        return bool(
            any(f != 1.0 for f in self.gpu_speed_factors.values())
            or (self.jitter.distribution != "none" and self.jitter.cv > 0)
            or self.stragglers.probability > 0
        )


class SimulationSpec(_Strict):
    """How long to simulate and how."""

    _section = "simulation"
    _limited = ("iterations", "warmup_iterations", "replications")

    iterations: int = Field(
        default=3, ge=1, description="Measured iterations (after warmup); results are their mean (at most 1,000)."
    )
    warmup_iterations: int = Field(
        default=1, ge=0, description="Iterations simulated first and left out of the results (at most 1,000)."
    )
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Root seed of every random stream; same scenario + seed = same result.")
    mode: Literal["auto", "fast", "detailed"] = Field(
        default="auto",
        description="detailed: every rank and every point-to-point flow; fast: one representative rank and one "
        "bundled flow per collective phase (same answer when ranks are identical); auto: fast unless "
        "variability makes ranks differ.",
    )
    replications: int = Field(
        default=1, ge=1,
        description="Independent runs with derived seeds; headline metrics are their mean, with a 95% CI (at most 1,000).",
    )


class Scenario(_Strict):
    """A complete, validated scenario."""

    name: str = Field(default="unnamed", description="Short name shown in reports.")
    description: str = Field(default="", description="Free text.")
    cluster: ClusterSpec = Field(default_factory=lambda: ClusterSpec(), description="The hardware.")
    workload: WorkloadSpec = Field(default_factory=lambda: WorkloadSpec(), description="The model and per-GPU batch.")
    training: TrainingSpec = Field(default_factory=lambda: TrainingSpec(), description="Gradient synchronization.")
    variability: VariabilitySpec = Field(default_factory=lambda: VariabilitySpec(), description="Differences between ranks.")
    simulation: SimulationSpec = Field(default_factory=lambda: SimulationSpec(), description="Simulation settings.")
    calibration: str | None = Field(
        default=None,
        description="Path of a calibration profile (`clustersim probe`); relative paths resolve against the "
        "scenario file's folder. Its measured per-layer, optimizer and allreduce times replace the estimates.",
    )

    @field_validator("calibration")
    @classmethod
    def _plain_path(cls, v: str | None) -> str | None:
        return _usable_path(v)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        gpu = catalog.get_gpu(self.cluster.gpu)
        if not gpu.supports(self.workload.precision):
            raise ValueError(f"workload.precision: {gpu.name} does not support {self.workload.precision}")
        if self.variability.active and self.simulation.mode == "fast":
            raise ValueError(
                "simulation.mode: fast follows one representative rank, but variability makes ranks differ; "
                "use auto or detailed"
            )
        too_high = [r for r in self.variability.gpu_speed_factors if r >= self.cluster.total_gpus]
        if too_high:
            raise ValueError(
                f"variability.gpu_speed_factors: rank {too_high[0]} does not exist ({self.cluster.total_gpus} GPUs)"
            )
        if self.workload.sequence_length is not None:
            try:
                zoo.get_model(self.workload.model, sequence_length=self.workload.sequence_length)
            except ValueError as exc:
                raise ValueError(f"workload.sequence_length: {exc}") from None
        if self.training.parallelism is not None:
            self._check_parallelism(self.training.parallelism)
            if self.workload.input_copy == "exposed":
                raise ValueError("workload.input_copy: exposed is a step of plain data parallelism (a batch copied "
                                 "before forward); training.parallelism does not model the input")
        if self.training.strategy == "device_reduce" and self.cluster.nodes > 1:
            raise ValueError(f"training.strategy: device_reduce sums on the GPUs of one node (MXNet kvstore "
                             f"'device'), not across {self.cluster.nodes} nodes; use parameter_server")
        return self

    def _check_parallelism(self, parallelism: ParallelismSpec) -> None:
        from .llm.spec import get_spec, known_specs

        try:
            spec = get_spec(self.workload.model)
        except KeyError:
            raise ValueError(f"training.parallelism: workload.model {self.workload.model!r} is not a transformer "
                             f"the parallelism model knows ({', '.join(known_specs())})") from None
        seq = self.workload.sequence_length or zoo.get_model(self.workload.model).input_shape[0]
        check_layout(parallelism, spec, total_gpus=self.cluster.total_gpus, seq_len=seq)

    def single_gpu(self) -> Scenario:
        """The same scenario on one GPU: the baseline of speedup."""
        data = self.model_dump()
        data["cluster"].update(nodes=1, gpus_per_node=1)
        server = data["cluster"]["server"]
        if server["layout"] != "dgx1":  # the DGX-1's shape is fixed; the others scale with GPUs
            server.update(pcie_switches=None, gpus_per_switch=None, nics=None)
        else:  # gpus_per_switch describes the full server, not the one rank the baseline runs
            server.update(gpus_per_switch=None)
        if server["layout"] == "pcie_tree":
            server.update(sockets=None)
        # The one GPU keeps rank 0's speed and the same jitter and stragglers.
        factors = data["variability"]["gpu_speed_factors"]
        data["variability"]["gpu_speed_factors"] = {0: factors[0]} if 0 in factors else {}
        try:
            return Scenario.model_validate(data)
        except ValueError as exc:  # pydantic's ValidationError included
            from .errors import ScenarioError

            message = " ".join(str(exc).split())
            raise ScenarioError(f"the one-GPU baseline of this scenario is not valid: {message[:300]}") from None

    @property
    def detailed(self) -> bool:
        """Whether the simulation follows every rank."""
        mode = self.simulation.mode
        return mode == "detailed" or (mode == "auto" and self.variability.active)
