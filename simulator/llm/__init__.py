"""Transformer training beyond data parallelism: tensor, pipeline, data (ZeRO/FSDP),
sequence, context and expert parallelism, on the same engine, topology graphs, kernel
model and collective library as the rest of the simulator.

* :mod:`.spec` — models by their shapes (layers, hidden, heads, GQA, SwiGLU, MoE), with
  the published presets and closed-form parameter and FLOP counts;
* :mod:`.stage` — the layers one GPU runs for a pipeline stage at a tensor degree;
* :mod:`.parallel` — the ``training.parallelism`` section and its checks;
* :mod:`.schedule` — GPipe, 1F1B and interleaved 1F1B as per-stage operation orders;
* :mod:`.memory` — ZeRO model states and activations per GPU;
* :mod:`.costs` — compute, recomputation and tensor-parallel collectives per chunk;
* :mod:`.step` — the SimPy processes of one step; :mod:`.run` — build, run, report.

This package imports nothing at load time (the zoo registers its presets through
:mod:`.spec` and :mod:`.stage`, which import only the zoo's builder).
"""
