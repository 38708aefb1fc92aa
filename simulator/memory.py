"""GPU memory model: what one data-parallel rank keeps on its GPU during training.

Per layer, for a batch of ``N`` samples:

* **activations** - the layer's output, ``N * output_elements * act_bytes``, kept for
  the backward pass. Outputs computed in place are not counted: ReLU (torchvision's
  ``inplace=True``) and, in CNNs, the residual ``add`` (torchvision's
  ``out += identity``). Dropout also keeps a 1-byte mask per element.
* **parameters** - ``params * param_bytes`` (amp keeps fp32 master weights);
* **gradients** - the same size as the parameters (fp32 under amp);
* **optimizer state** - fp32 words per parameter: SGD 0, momentum 1, Adam 2;
* **workspace** of the layer's convolution algorithm (:mod:`simulator.algorithms`).

Plus, once per model:

* the **input batch** - ``N * prod(input_shape)`` fp32 pixels (fp16/bf16 under pure
  half precision) or int64 token ids;
* a **backward transient** - while a layer runs backward the gradient of its output
  and of its input are both alive: ``2 * N * max(output_elements) * act_bytes``;
* **workspace**: ``shared`` = the largest layer's (one buffer reused by every layer,
  PyTorch/cuDNN style) or ``per_layer`` = the sum (each layer keeps its own, Caffe
  style).

The total is comparable with torch's ``max_memory_allocated``. The GPU's capacity loses
:data:`CONTEXT_RESERVE_GIB` to the CUDA context and the allocator before any tensor
exists. ResNet-50 fp32 comes out at 5.9 GiB for batch 64 and 21.9 GiB for batch 256,
in line with the ~6 and ~22 GB PyTorch reports (see ``tests/advise``); cross-checking
against the probe's measured peak memory is left to when profiles carry it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from . import algorithms, catalog, compute, zoo
from .compute import ACTIVATION_BYTES, PARAMETER_BYTES
from .errors import ScenarioError
from .resolved import Resolved, resolved
from .scenario import Scenario

GIB = 1024**3
#: GPU memory taken by the CUDA context, cuDNN/cuBLAS handles and allocator slack.
CONTEXT_RESERVE_GIB = 0.5
#: fp32 words of optimizer state per parameter.
OPTIMIZER_STATE_WORDS = {"sgd": 0, "momentum": 1, "adam": 2}
GRADIENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "amp": 4, "fp8": 2}
_IN_PLACE = {"images": frozenset({"relu", "add"}), "sequences": frozenset({"relu"})}


@dataclass(frozen=True)
class LayerMemory:
    name: str
    kind: str
    activations: int
    parameters: int
    gradients: int
    optimizer: int
    workspace: int
    algorithm: str | None


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one rank needs, by component, and the GPU's capacity."""

    model: str
    batch: int
    precision: str
    gpu: str
    workspace_mode: str
    activations: int
    parameters: int
    gradients: int
    optimizer: int
    input_batch: int
    backward_transient: int
    workspace: int
    capacity: int
    reserve: int
    layers: tuple[LayerMemory, ...] = ()

    @property
    def total(self) -> int:
        return (self.activations + self.parameters + self.gradients + self.optimizer + self.input_batch
                + self.backward_transient + self.workspace)

    @property
    def usable(self) -> int:
        return self.capacity - self.reserve

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    @property
    def largest_component(self) -> str:
        parts = self.components()
        return max(parts, key=parts.get)  # type: ignore[arg-type]

    def components(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("activations", "parameters", "gradients", "optimizer", "input_batch",
                                               "backward_transient", "workspace")}

    def to_dict(self, layers: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "layers"}
        out.update(total=self.total, usable=self.usable, fits=self.fits, total_gib=self.total / GIB)
        if layers:
            out["layers"] = [asdict(layer) for layer in self.layers]
        return out

    def message(self) -> str:
        return (f"batch {self.batch} of {self.model} in {self.precision} needs {self.total / GIB:.1f} GiB; "
                f"the {self.gpu} has {self.capacity / GIB:.0f} GiB ({self.usable / GIB:.1f} GiB usable after "
                f"{self.reserve / GIB:.1f} GiB for the CUDA context)")


def input_bytes_per_sample(model: zoo.Model, precision: str) -> int:
    elements = math.prod(model.input_shape)
    if model.sample_unit == "sequences":
        return 8 * elements  # int64 token ids
    return elements * (2 if precision in ("fp16", "bf16", "fp8") else 4)


def estimate(
    model: zoo.Model,
    gpu: catalog.GPUSpec,
    *,
    batch: int,
    precision: str = "fp32",
    optimizer: str = "momentum",
    conv_algorithms: list[str | None] | None = None,
    workspace_mode: str = "shared",
) -> MemoryEstimate:
    """Memory of one rank; ``conv_algorithms`` per layer (None: implicit GEMM)."""
    act_bytes = ACTIVATION_BYTES[precision]
    par_bytes = PARAMETER_BYTES[precision]
    grad_bytes = GRADIENT_BYTES[precision]
    state_bytes = 4 * OPTIMIZER_STATE_WORDS[optimizer]
    in_place = _IN_PLACE[model.sample_unit]
    layers = []
    for i, layer in enumerate(model.layers):
        act = 0 if layer.kind in in_place else batch * layer.output_elements * act_bytes
        if layer.kind == "dropout":
            act += batch * layer.output_elements  # bool mask
        algorithm = None
        ws = 0
        if layer.kind == "conv":
            algorithm = (conv_algorithms[i] if conv_algorithms else None) or "implicit_gemm"
            ws = algorithms.workspace_bytes(layer, algorithm, batch, act_bytes)
        layers.append(LayerMemory(layer.name, layer.kind, act, layer.params * par_bytes, layer.params * grad_bytes,
                                  layer.params * state_bytes, ws, algorithm))
    workspaces = [lm.workspace for lm in layers]
    workspace = sum(workspaces) if workspace_mode == "per_layer" else max(workspaces, default=0)
    return MemoryEstimate(
        model=model.name,
        batch=batch,
        precision=precision,
        gpu=gpu.name,
        workspace_mode=workspace_mode,
        activations=sum(lm.activations for lm in layers),
        parameters=sum(lm.parameters for lm in layers),
        gradients=sum(lm.gradients for lm in layers),
        optimizer=sum(lm.optimizer for lm in layers),
        input_batch=batch * input_bytes_per_sample(model, precision),
        backward_transient=2 * batch * max(layer.output_elements for layer in model.layers) * act_bytes,
        workspace=workspace,
        capacity=int(gpu.memory_gib * GIB),
        reserve=int(CONTEXT_RESERVE_GIB * GIB),
        layers=tuple(layers),
    )


def scenario_algorithms(scenario: Scenario | Resolved) -> list[str | None]:
    """Per layer the conv algorithm the scenario runs (None for non-conv layers).

    ``auto`` is what cuDNN's autotuner does under the framework's workspace limit
    (TensorFlow and MXNet autotune by default; PyTorch with ``cudnn.benchmark``): each
    convolution runs the algorithm the layer-time model finds fastest among those
    whose workspace fits in the memory the rank leaves free, implicit GEMM when none
    does."""
    view = resolved(scenario)
    w = view.scenario.workload
    if w.conv_algorithm == "auto":
        return _fastest_that_fit(view)
    return algorithms.layer_algorithms(view.model.layers, w.conv_algorithm, dict(w.conv_algorithms),
                                       architecture=view.gpu.architecture)


def _fastest_that_fit(view: Resolved) -> list[str | None]:
    w, model, batch = view.scenario.workload, view.model, view.batch_per_gpu
    base = estimate(model, view.gpu, batch=batch, precision=w.precision, optimizer=w.optimizer,
                    workspace_mode=w.workspace)
    headroom = base.usable - base.total
    rates = compute.device_rates(view.gpu, w.precision, view.compute_efficiency, w.memory_efficiency,
                                 view.layer_overhead_s)
    act = ACTIVATION_BYTES[w.precision]
    architecture = view.gpu.architecture
    first_weighted = next((i for i, layer in enumerate(model.layers) if layer.params > 0), -1)
    chosen: list[str | None] = []
    used = 0
    for i, layer in enumerate(model.layers):
        if layer.kind != "conv":
            chosen.append(None)
            continue
        name: str | None = w.conv_algorithms.get(layer.name)
        if name is None:
            budget = headroom if w.workspace == "shared" else headroom - used
            options = [a for a in algorithms.ALGORITHMS if algorithms.eligible(layer, a, architecture)
                       and algorithms.workspace_bytes(layer, a, batch, act) <= max(budget, 0)]
            name = min(options or ["implicit_gemm"], key=lambda a: sum(compute.layer_times(
                layer, batch, rates, 0.0, a, input_gradient=i != first_weighted)))
        name = name if algorithms.eligible(layer, name, architecture) else "implicit_gemm"
        used += algorithms.workspace_bytes(layer, name, batch, act)
        chosen.append(name)
    return chosen


def estimate_scenario(scenario: Scenario | Resolved) -> MemoryEstimate:
    """The memory estimate of one rank of a scenario (or of its resolved view)."""
    view = resolved(scenario)
    w = view.scenario.workload
    return estimate(view.model, view.gpu, batch=view.batch_per_gpu, precision=w.precision, optimizer=w.optimizer,
                    conv_algorithms=scenario_algorithms(view), workspace_mode=w.workspace)


def check_fits(scenario: Scenario | Resolved) -> MemoryEstimate:
    """Raise :class:`ScenarioError` with the numbers when a rank does not fit its GPU."""
    view = resolved(scenario)
    est = estimate_scenario(view)
    if view.scenario.workload.check_memory and not est.fits:
        parts = ", ".join(f"{k.replace('_', ' ')} {v / GIB:.2f}" for k, v in est.components().items() if v)
        raise ScenarioError(
            f"workload.batch_per_gpu: {est.message()} ({parts} GiB). Lower the batch, use a smaller "
            "precision or a GPU with more memory (`clustersim advise batch`), or set workload.check_memory: false"
        )
    return est
