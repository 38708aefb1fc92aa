"""The optimizer step: the kernels it launches and the bytes they move.

One step reads each parameter's gradient and state and writes the new parameter and
state, in fp32 (master weights under amp): :data:`OPTIMIZER_WORDS` 4-byte words per
parameter when one kernel does the whole update. How many kernels that takes depends on
how the framework writes the update (``workload.optimizer_kernels``):

* ``multi_tensor``: one launch updates every tensor (apex's FusedAdam / FusedLAMB /
  FusedSGD, PyTorch's ``foreach`` and ``fused`` optimizers, DeepSpeed, Megatron);
* ``per_tensor``: one fused kernel per parameter tensor, the same bytes (TensorFlow's
  ``ApplyAdam`` / ``ApplyMomentum`` op per variable, MXNet's per-parameter update ops,
  Caffe's per-blob update);
* ``elementwise``: the update written as the framework's element-wise ops, each a
  kernel reading and writing whole tensors (:data:`ELEMENTWISE_STEPS`): Google's BERT
  ``AdamWeightDecayOptimizer`` (``optimization.py``: two products and a sum per moment,
  square, square root, epsilon, quotient, decay, learning rate, difference, then three
  ``assign`` copies: 17 kernels and 39 words per tensor, against 1 and 7 fused), and
  PyTorch's for-loop SGD with momentum (``buf.mul_``, ``buf.add_``, ``p.add_``).
  Under a graph compiler (``workload.graph_compiler: xla``) the arithmetic is fused into
  one kernel per tensor, but the values it writes go back to TensorFlow 1's reference
  variables through ``Assign`` ops, which XLA cannot compile: one copy kernel per state
  tensor written (NVIDIA/DeepLearningExamples#539 moved BERT to resource variables to let
  XLA fold them: 13% faster on one V100 at fp16 batch 3).

Under ``amp`` (fp16 compute over fp32 master weights) every step also converts each
parameter twice besides the update: the fp32 master weight into the fp16 copy the
forward pass reads, and the fp16 gradient the backward pass produces into the fp32
gradient the update reads (unscaled by the loss scale and checked for overflow on the
way). Beside a multi-tensor optimizer both run at the step as two multi-tensor passes
(:func:`master_copies_at_step`); elsewhere as a cast per parameter tensor beside its layer,
in forward and in backward (:func:`master_copies_per_layer`), where the host issues them
while the GPU runs the layers.

Each launch costs the scenario's per-kernel overhead, as every other kernel does.
"""

from __future__ import annotations

from simulator.zoo import Model
from simulator.zoo.core import Layer

#: ``workload.optimizer_kernels`` values.
OPTIMIZER_KERNELS: tuple[str, ...] = ("multi_tensor", "per_tensor", "elementwise")

#: 4-byte words per parameter one fused update moves: read gradient, parameter and state,
#: write parameter and state (sgd: g, p -> p; momentum: + buffer; adam: + two moments).
OPTIMIZER_WORDS = {"sgd": 3, "momentum": 5, "adam": 7}
#: Tensors per parameter the update writes back (parameter, momentum buffer, moments).
STATE_WRITES = {"sgd": 1, "momentum": 2, "adam": 3}
#: (kernels, words per parameter) per parameter tensor of an update written as
#: element-wise ops (see the module docstring; each op reads its operands and writes its
#: result once; an in-place op reads what it updates).
ELEMENTWISE_STEPS = {"sgd": (1, 3), "momentum": (3, 8), "adam": (17, 39)}


#: 4-byte words per parameter amp's two conversions move each step: read the fp32 master
#: weight, write its fp16 copy (1 + 0.5); read the fp16 gradient, write the fp32 one
#: (0.5 + 1). This is the floor every mixed-precision trainer with fp32 master weights pays
#: (Micikevicius et al., "Mixed Precision Training", ICLR 2018, section 3.1; apex's O2 copies
#: exactly these in two multi-tensor passes). PyTorch's autocast with GradScaler and
#: TensorFlow's automatic mixed precision move more (a separate unscale pass over the fp32
#: gradients: 2 words; TensorFlow's overflow check reads them again: 1), which is not
#: counted; MXNet's multi-precision optimizers fold both conversions into the update
#: kernel, where this overcounts (by under 1% of a ResNet-50 step).
AMP_MASTER_COPY_WORDS = 3.0


def master_copies_at_step(model: Model, precision: str, kernels: str) -> tuple[int, float]:
    """(kernels launched, 4-byte words moved per parameter) by amp's conversions that run
    at the optimizer step: both, as two multi-tensor passes, where the optimizer is
    multi-tensor (apex's O2: the gradients into the fp32 master gradients before the
    update, the master weights into the fp16 model after it). Elsewhere they run beside
    the layers (:func:`master_copies_per_layer`) and nothing here; nothing outside amp."""
    if precision != "amp" or kernels != "multi_tensor":
        return 0, 0.0
    return 2, AMP_MASTER_COPY_WORDS


def master_copies_per_layer(layer: Layer, precision: str, kernels: str) -> tuple[int, float]:
    """(kernels launched, bytes moved) in each of ``layer``'s forward and backward passes by
    amp's conversions where they are one cast per parameter tensor (``kernels`` other
    than ``multi_tensor``: TensorFlow's ``Cast`` ops around each variable, autocast's
    per-weight casts): forward casts each fp32 weight to fp16 before the layer reads it,
    backward casts each fp16 weight gradient to fp32 (6 bytes per parameter each way).
    Only layers with a matrix product: norms and embeddings run on their fp32 parameters."""
    if precision != "amp" or kernels == "multi_tensor" or layer.gemm is None or layer.params == 0:
        return 0, 0.0
    return layer.parameter_tensor_count, layer.params * 4 * AMP_MASTER_COPY_WORDS / 2


def step_launches_and_words(model: Model, optimizer: str, kernels: str, compiled: bool) -> tuple[int, float]:
    """(kernels launched, 4-byte words moved per parameter) by one optimizer step of
    ``model``; ``compiled``: under a graph compiler (XLA)."""
    if optimizer not in OPTIMIZER_WORDS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZER_WORDS)}")
    fused = OPTIMIZER_WORDS[optimizer]
    tensors = model.parameter_tensors
    if kernels == "multi_tensor":
        return 1, fused
    if kernels == "per_tensor":
        return tensors, fused
    if kernels == "elementwise":
        if compiled:  # one fused kernel, then one Assign copy (read and write) per state tensor
            writes = STATE_WRITES[optimizer]
            return tensors * (1 + writes), fused + 2 * writes
        launches, words = ELEMENTWISE_STEPS[optimizer]
        return tensors * launches, words
    raise ValueError(f"unknown optimizer_kernels {kernels!r}; expected one of {OPTIMIZER_KERNELS}")
