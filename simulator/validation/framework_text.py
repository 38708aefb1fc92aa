"""What a measured row's free-text ``framework`` says about the run, as scenario fields.

The published rows name their software in prose ("TensorFlow 1.15 (NGC 20.06-tf1),
Horovod/NCCL, XLA on, FP32"); these functions read the keywords that decide a scenario
field: the ``training.framework`` preset, ``workload.kernel_fusion``,
``workload.fork_gradients``, ``workload.graph_compiler``, ``workload.optimizer``,
``workload.optimizer_kernels``, ``workload.conv_algorithm`` and ``workload.host_sync_layers``.
Used by the validation runner and the benchmark scripts that build scenarios from rows.
"""

from __future__ import annotations

import re


def preset_for_text(framework: str | None, strategy: str) -> str | None:
    """The preset a free-text ``framework`` names for a run of ``strategy``, or None.

    Read by keyword, most specific first: Horovod (whatever it runs inside), PyTorch
    DDP, PaddlePaddle, OneFlow, DeepSpeed, then TensorFlow and MXNet by the strategy (parameter
    servers or not). BytePS, Caffe and unnamed stacks get no preset."""
    text = (framework or "").lower()
    ps = strategy == "parameter_server"
    if not text or "byteps" in text or "caffe" in text:
        return None
    if "horovod" in text:
        return None if ps else "horovod"
    for key, preset in (("ddp", "pytorch_ddp"), ("paddle", "paddle"), ("oneflow", "oneflow"),
                        ("deepspeed", "deepspeed")):
        if key in text:
            return preset
    if ps and "tf_cnn_benchmarks" in text:
        return "tf_cnn_benchmarks_ps"
    if "tensorflow" in text or "tf_cnn" in text:
        return "tensorflow_ps" if ps else "tensorflow_replicated_nccl"
    if "mxnet" in text:
        return "mxnet_dist_sync" if ps else "mxnet_kvstore_device"
    return None


def kernel_fusion_for_text(framework: str | None, precision: str) -> str:
    """The ``workload.kernel_fusion`` a free-text ``framework`` implies for a run in ``precision``.

    XLA (TensorFlow's auto-clustering, ``XLA on`` in NVIDIA's tables) fuses a batch norm
    with the add and ReLU after it; so does NVIDIA's MXNet ResNet-50 in fp16, whose
    runner passes ``--fuse-bn-relu 1 --fuse-bn-add-relu 1`` for float16 only
    (DeepLearningExamples ``MxNet/Classification/RN50v1.5/runner``): an NGC MXNet
    container in mixed precision. Everything else runs unfused."""
    text = (framework or "").lower()
    if graph_compiler_for_text(framework) == "xla":
        return "norm_activation"
    if _nvidia_mxnet(text) and precision in ("amp", "fp16"):
        return "norm_activation"
    return "none"


def fork_gradients_for_text(framework: str | None) -> str | None:
    """The ``workload.fork_gradients`` a free-text ``framework`` implies, or None for the
    default (``fused`` under XLA, ``sum`` otherwise): ``copy_add`` for Lua Torch, whose
    ``nn.ConcatTable`` copies the first branch's gradient and adds the others in place;
    ``fused`` for NVIDIA's MXNet (an NGC container), whose runner sets
    ``MXNET_EXEC_ENABLE_ADDTO=1`` (DeepLearningExamples ``MxNet/Classification/RN50v1.5/runner``):
    the second gradient is accumulated by the kernel that produces it."""
    text = (framework or "").lower()
    if re.search(r"\btorch ?7\b|\blua ?torch\b|fb\.resnet\.torch", text):
        return "copy_add"
    if graph_compiler_for_text(framework) == "xla" or _nvidia_mxnet(text):
        return "fused"
    return None


def optimizer_for_text(framework: str | None, model: str) -> str | None:
    """The ``workload.optimizer`` a row implies, or None for the default (``momentum``):
    ``adam`` where the text names Adam or LAMB (same state: two moments per parameter),
    and for BERT and GPT models, which every source here trains with one of them
    (Google's and NVIDIA's AdamWeightDecay, NVIDIA's PyTorch LAMB)."""
    text = (framework or "").lower()
    if re.search(r"\badam|\blamb\b", text) or model.startswith(("bert", "gpt")):
        return "adam"
    return None


def optimizer_kernels_for_text(framework: str | None, model: str) -> str | None:
    """The ``workload.optimizer_kernels`` a free-text ``framework`` implies for ``model``,
    or None for the default (``multi_tensor``): TensorFlow updates each variable with its
    own op (``ApplyMomentum``, ``ApplyAdam``: ``per_tensor``), except its BERT, whose
    ``optimization.py`` (Google's, and NVIDIA's fork of it) writes AdamWeightDecay as
    element-wise ops per variable (``elementwise``). MXNet outside NVIDIA's containers
    updates each weight with its own ``sgd_mom_update`` / ``adam_update`` call (Module's
    ``_update_params`` loops over the weights; the aggregated ``multi_sgd_*`` updates,
    ``MXNET_OPTIMIZER_AGGREGATION_SIZE``, 4 weights per call by default, came later, cover
    SGD only and only with ``update_on_kvstore`` off): ``per_tensor``. NVIDIA's MXNet
    keeps the default."""
    text = (framework or "").lower()
    if "mxnet" in text and not _nvidia_mxnet(text):
        return "per_tensor"
    if not re.search(r"tensorflow|\btf_cnn|\btf ?[12]\.", text):
        return None
    return "elementwise" if model.startswith("bert") else "per_tensor"


def conv_algorithm_for_text(framework: str | None) -> str | None:
    """The ``workload.conv_algorithm`` a free-text ``framework`` implies, or None for the
    default (``auto``: the autotuner's pick). MXNet of 2016 and before ran cuDNN's
    heuristic choice (``cudnnGetConvolution*Algorithm`` under its workspace limit, nothing
    timed): autotuning arrived on 2016-06-27 (#2538), was turned off by default on
    2016-07-21 (b852065, ``MXNET_CUDNN_AUTOTUNE_DEFAULT`` = 0) and back on in v0.9.1
    (#3498, 2016-12-29). A row that dates its MXNet to 2015-2016 (v0.5-v0.8, commit
    0a03417) runs the heuristic, modelled as precomputed implicit GEMM on every layer;
    the three weeks of 2016 that autotuned are too short to name. cuDNN 5.1's heuristics
    did not hand out its new non-fused Winograd: Torch users saw 5.1's speedup only with
    ``cudnn.benchmark`` (soumith/cudnn.torch#258), TensorFlow and Caffe of the time, which
    queried the heuristics, none at all (aizvorski/vgg-benchmarks#7). Left out: cuDNN 5's
    forward heuristic does return the fused Winograd F(2x2, 3x3) for some padded 3x3
    layers with 48 or more channels (nagadomi/waifu2x#122)."""
    text = (framework or "").lower()
    if "mxnet" in text and _mxnet_2016(text):
        return "precomputed_gemm"
    return None


def _mxnet_2016(text: str) -> bool:
    """An MXNet row's lower-cased text dates it to 2015-2016 (v0.5-v0.8, commit 0a03417)."""
    return bool(re.search(r"\b201[56]\b|mxnet v?0\.[5-8]\b|0a03417", text))


def host_sync_layers_for_text(framework: str | None) -> int | None:
    """The ``workload.host_sync_layers`` a free-text ``framework`` implies, or None for the
    default (0: an asynchronous stream). MXNet's engine ends every task by waiting for the
    GPU (``ctx.get_stream<gpu>()->Wait()``): in MXNet 1.x a task is a bulk segment of up to
    ``MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN`` operators, 15 by default (``graph_executor.cc``
    at 054aeee, MXNet 1.2), and each imperative operator, the per-weight optimizer updates
    among them (``imperative_utils.h``); in MXNet of 2015-2016 (commit 0a03417) a segment
    ends before a third operator that touches parameters (``InitOpSegs``: conv, batch norm,
    ReLU, about 3 layers) and each NDArray operator waits (``ndarray.cc``). NVIDIA's MXNet
    runs its asynchronous GPU engine and CUDA graphs (DeepLearningExamples ``runner``:
    ``MXNET_ASYNC_GPU_ENGINE=1``, ``MXNET_ENABLE_CUDA_GRAPHS=1``): left at 0."""
    text = (framework or "").lower()
    if "mxnet" not in text or _nvidia_mxnet(text):
        return None
    return 3 if _mxnet_2016(text) else 15


def workload_for_text(framework: str | None, model: str, precision: str) -> dict[str, str | int]:
    """Every ``workload`` field a row's free-text ``framework`` implies for ``model`` in
    ``precision`` (the functions above), leaving out those that keep the scenario default:
    what a row without a scenario file is simulated with, and what a generated scenario
    file writes."""
    fields = {"kernel_fusion": kernel_fusion_for_text(framework, precision),
              "graph_compiler": graph_compiler_for_text(framework),
              "fork_gradients": fork_gradients_for_text(framework),
              "optimizer": optimizer_for_text(framework, model),
              "optimizer_kernels": optimizer_kernels_for_text(framework, model),
              "conv_algorithm": conv_algorithm_for_text(framework),
              "host_sync_layers": host_sync_layers_for_text(framework)}
    return {key: value for key, value in fields.items() if value not in (None, "none")}


def _nvidia_mxnet(text: str) -> bool:
    """Whether lower-cased framework text names NVIDIA's MXNet (an NGC container), whose
    DeepLearningExamples runner sets the fusions and gradient accumulation read above."""
    return "mxnet" in text and "ngc" in text


def graph_compiler_for_text(framework: str | None) -> str:
    """The ``workload.graph_compiler`` a free-text ``framework`` implies: ``xla`` where
    TensorFlow's XLA is on (its auto-clustering: ``XLA on`` in NVIDIA's tables, Lambda's
    ``TF_XLA_FLAGS=--tf_xla_auto_jit=2`` runs), ``none`` otherwise."""
    text = (framework or "").lower()
    return "xla" if re.search(r"\bxla\b", text) and "without xla" not in text else "none"
