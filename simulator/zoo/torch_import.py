"""Import a torch ``nn.Module`` as a model file (needs the ``probe`` extra: torch).

The module is traced with ``torch.fx`` and run once on the **meta device** (shapes
only: no memory, no arithmetic), one sample at a time, under torch's own FLOP counter
(:class:`torch.utils.flop_counter.FlopCounterMode`). Each graph node becomes one entry
of a model file (:mod:`simulator.zoo.model_file`):

* modules and functions the zoo builder knows (Conv2d, Linear, BatchNorm2d, LayerNorm,
  ReLU, GELU, Softmax, Dropout, Max/AvgPool2d, AdaptiveAvgPool2d, Embedding, ``+``,
  ``torch.cat``) are written **by shape**, so they cost exactly what the same layer of
  a zoo model costs; torch's count of their matrix FLOPs is checked against the
  builder's (it leaves out the bias adds, which the zoo counts);
* views (flatten, reshape, permute, ...) become ``flatten``/``reshape`` entries (no cost);
* anything else is written **by numbers**: kind ``other``, torch's FLOP count, its
  parameters and activation sizes.

torch is imported only when an import runs; nothing else in ``simulator`` needs it.
"""

from __future__ import annotations

import copy
import json
import math
import operator
from collections.abc import Sequence
from typing import Any

from simulator.zoo.model_file import INPUT

#: fx ``call_method`` / ``call_function`` targets that only change the view of a tensor.
_VIEWS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze",
          "expand_as", "view_as"}
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "softmax": "softmax", "dropout": "dropout"}


class ImportProblem(ValueError):
    """The module cannot be imported (cannot be traced, or an unsupported input)."""


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # the probe extra is not installed
        raise ImportProblem(f"importing a torch model needs the probe extra (pip install 'clustersim[probe]'): "
                            f"{exc}") from None
    return torch


def _pair(value: Any) -> Any:
    """A torch int-or-tuple hyper-parameter as the model file writes it."""
    if isinstance(value, (tuple, list)):
        return value[0] if len(set(value)) == 1 else list(value)
    return value


def _module_spec(module: Any, nn: Any, in_shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The by-shape entry of a module the builder knows, or None."""
    if isinstance(module, nn.Conv2d) and _pair(module.dilation) == 1 and not isinstance(module.padding, str) \
            and module.padding_mode == "zeros":
        spec = {"kind": "conv", "out_channels": module.out_channels, "kernel": _pair(module.kernel_size)}
        if _pair(module.stride) != 1:
            spec["stride"] = _pair(module.stride)
        if _pair(module.padding) != 0:
            spec["padding"] = _pair(module.padding)
        if module.bias is not None:
            spec["bias"] = True
        if module.groups != 1:
            spec["groups"] = module.groups
        return spec
    if isinstance(module, nn.Linear):
        return {"kind": "linear", "out_features": module.out_features, **({} if module.bias is not None
                                                                          else {"bias": False})}
    if isinstance(module, nn.BatchNorm2d) and module.affine and len(in_shape) == 3:
        return {"kind": "batchnorm"}
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1 and module.elementwise_affine \
            and getattr(module, "bias", True) is not None:
        return {"kind": "layernorm"}
    for cls, kind in ((nn.ReLU, "relu"), (nn.GELU, "gelu"), (nn.Softmax, "softmax"), (nn.Dropout, "dropout")):
        if isinstance(module, cls):
            return {"kind": kind}
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and len(in_shape) == 3 \
            and _pair(getattr(module, "dilation", 1)) == 1:
        spec = {"kind": "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool",
                "kernel": _pair(module.kernel_size), "stride": _pair(module.stride)}
        if _pair(module.padding) != 0:
            spec["padding"] = _pair(module.padding)
        if module.ceil_mode:
            spec["ceil_mode"] = True
        return spec
    if isinstance(module, nn.AdaptiveAvgPool2d) and len(in_shape) == 3:
        size = module.output_size
        if size is None or (isinstance(size, (tuple, list)) and None in size):
            return None
        return {"kind": "adaptive_avgpool", "output_size": _pair(size)}
    if isinstance(module, nn.Embedding):
        return {"kind": "embedding", "num_embeddings": module.num_embeddings, "dim": module.embedding_dim}
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return {"kind": "flatten"}
    return None


class _Recorder:
    """Runs the traced graph on meta tensors, noting each node's output and FLOPs."""

    def __init__(self, torch: Any, graph_module: Any) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        recorder = self
        self.outputs: dict[str, Any] = {}
        self.flops: dict[str, int] = {}

        # torch comes in as an argument (imported only when an import runs), untyped here.
        class Interpreter(torch.fx.Interpreter):  # type: ignore[misc]
            def run_node(self, n: Any) -> Any:
                with FlopCounterMode(display=False) as counter:
                    out = super().run_node(n)
                recorder.outputs[n.name] = out
                recorder.flops[n.name] = int(counter.get_total_flops())
                return out

        self.interpreter = Interpreter(graph_module)


def _per_sample(tensor: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])


def import_torch_module(
    module: Any,
    input_shape: Sequence[int],
    *,
    name: str,
    sample_unit: str = "images",
    description: str = "",
) -> dict[str, Any]:
    """The model-file data (a dict; :func:`write_model_file` writes it) of ``module``
    for one sample of ``input_shape`` (token ids, int64, for ``sequences``).

    The module itself is not changed: a copy is moved to the meta device.

    Raises:
        ImportProblem: torch is missing, the module cannot be traced by ``torch.fx``
            (data-dependent control flow) or run on the meta device.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise ImportProblem(f"expected a torch.nn.Module, got {type(module).__name__}")
    meta = copy.deepcopy(module).to("meta")
    try:
        traced = torch.fx.symbolic_trace(meta)
    except Exception as exc:  # torch.fx raises many kinds (TraceError, TypeError...)
        raise ImportProblem(f"torch.fx cannot trace the module: {' '.join(str(exc).split())[:300]}") from None
    dtype = torch.int64 if sample_unit == "sequences" else torch.float32
    sample = torch.zeros((1, *input_shape), dtype=dtype, device="meta")
    recorder = _Recorder(torch, traced)
    try:
        recorder.interpreter.run(sample)
    except Exception as exc:
        raise ImportProblem(f"the module does not run on input {tuple(input_shape)} on the meta device: "
                            f"{' '.join(str(exc).split())[:300]}") from None
    layers = _layers(torch, traced, recorder)
    return {
        "name": name,
        "description": description or f"imported from torch: {type(module).__name__}",
        "source": f"clustersim import-model ({type(module).__module__}.{type(module).__qualname__})",
        "sample_unit": sample_unit,
        "input_shape": [int(d) for d in input_shape],
        "layers": layers,
        "parameters_total": sum(p.numel() for p in module.parameters()),
        "torch_flops_total": sum(recorder.flops.values()),
    }


def _layers(torch: Any, traced: Any, rec: _Recorder) -> list[dict[str, Any]]:
    """One model-file entry per node that makes a tensor (see the module docstring)."""
    nn = torch.nn
    names: dict[str, str] = {}  # fx node name -> entry name (views and identities alias)
    used: set[str] = {INPUT}
    seen_params: set[int] = set()  # shared weights count once
    layers: list[dict[str, Any]] = []
    previous = INPUT

    def unique(base: str) -> str:
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    def tensor_inputs(node: Any) -> list[Any]:
        return [a for a in node.all_input_nodes if isinstance(rec.outputs.get(a.name), torch.Tensor)]

    def own_params(params: Sequence[Any]) -> int:
        fresh = [p for p in params if id(p) not in seen_params]
        seen_params.update(id(p) for p in fresh)
        return sum(p.numel() for p in fresh)

    for node in traced.graph.nodes:
        out = rec.outputs.get(node.name)
        if node.op == "placeholder":
            names[node.name] = INPUT
            continue
        if node.op in ("output", "get_attr") or not isinstance(out, torch.Tensor):
            continue
        inputs = tensor_inputs(node)
        sources = [names.get(a.name) for a in inputs]
        entry: dict[str, Any] | None = None
        base = node.name
        module = traced.get_submodule(node.target) if node.op == "call_module" else None
        if module is not None:
            base = str(node.target)
            if isinstance(module, nn.Identity) and sources and sources[0] is not None:
                names[node.name] = sources[0]  # no layer: later ones read what it passes on
                continue
            in_shape = _per_sample(rec.outputs[inputs[0].name]) if inputs else ()
            entry = _module_spec(module, nn, in_shape)
            if entry is not None and entry["kind"] in ("conv", "linear"):
                _check_matrix_flops(entry, module, rec.flops[node.name], in_shape, _per_sample(out), base)
        else:
            entry = _function_spec(node, sources, out)
        if entry is None:  # by numbers
            params = own_params(list(module.parameters())) if module is not None else own_params(
                [traced.get_parameter(a.target) for a in node.all_input_nodes if a.op == "get_attr"
                 and isinstance(rec.outputs.get(a.name), nn.Parameter)])
            entry = {"kind": "other", "forward_flops": rec.flops[node.name], "params": params,
                     "input_elements": sum(math.prod(_per_sample(rec.outputs[a.name])) for a in inputs
                                           if a.op != "get_attr"),  # weights are not per-sample
                     "output_shape": list(_per_sample(out))}
        elif module is not None:
            fresh = own_params(list(module.parameters()))
            if entry["kind"] == "linear" and fresh == 0 and any(True for _ in module.parameters()):
                entry["tied"] = True  # a module called twice: its weights count once
        name = unique(base)
        entry = {"name": name, **entry}
        if "inputs" not in entry and sources and sources[0] is not None and sources[0] != previous:
            entry["input"] = sources[0]
        layers.append(entry)
        names[node.name] = name
        previous = name
    return layers


def _function_spec(node: Any, sources: list[str | None], out: Any) -> dict[str, Any] | None:
    """The entry of a ``call_function`` / ``call_method`` node the builder knows, or None."""
    target = node.target
    label = target if isinstance(target, str) else getattr(target, "__name__", "")
    if label in ("add", "iadd", "__add__", "__iadd__") or target in (operator.add, operator.iadd):
        if len(sources) >= 2 and None not in sources:
            return {"kind": "add", "inputs": sources}
        return None
    if label in ("cat", "concat") and len(sources) >= 2 and None not in sources:
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        return {"kind": "concat", "inputs": sources} if dim in (1, -3) and out.dim() == 4 else None
    if label in _VIEWS and len(sources) == 1:
        shape = [int(d) for d in out.shape[1:]]
        return {"kind": "flatten"} if len(shape) == 1 else {"kind": "reshape", "shape": shape}
    if label in _ACTIVATIONS and len(sources) == 1:
        return {"kind": _ACTIVATIONS[label]}
    return None


def _check_matrix_flops(entry: dict[str, Any], module: Any, counted: int, in_shape: tuple[int, ...],
                        out_shape: tuple[int, ...], name: str) -> None:
    """torch's FLOPs for a conv / linear (no bias add) must be the builder's multiply-adds:
    if not, this mapping got the layer's shape wrong."""
    if entry["kind"] == "conv":
        fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        expected = 2 * math.prod(out_shape) * fan_in
    else:
        expected = 2 * math.prod(out_shape) * module.in_features
    if counted != expected:
        raise ImportProblem(f"{name}: torch counts {counted:,} FLOPs, the zoo's formula {expected:,} "
                            f"(input {in_shape}, output {out_shape}); not imported")


def write_model_file(data: dict[str, Any]) -> str:
    """Model-file YAML text: one line per layer, totals as comments."""
    import yaml

    def flow(value: Any) -> str:
        if not isinstance(value, (dict, list)):
            return json.dumps(value)  # a JSON scalar is a YAML scalar
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()

    lines = [
        "# clustersim model file, written by `clustersim import-model` (README \"Bring your own model\").",
        f"# torch: {data['parameters_total']:,} parameters; its FLOP counter: {data['torch_flops_total']:,} "
        "forward FLOPs per sample",
        "# (multiply-adds only; the zoo's formulas also count bias adds and element-wise ops).",
    ]
    for key in ("name", "description", "source", "sample_unit", "input_shape"):
        lines.append(f"{key}: {flow(data[key])}")
    lines.append("layers:")
    lines += [f"  - {flow(layer)}" for layer in data["layers"]]
    return "\n".join(lines) + "\n"


__all__ = ["ImportProblem", "import_torch_module", "write_model_file"]
