"""The one-GPU cross-validation's recorded snapshots of earlier models, named once.

``accuracy_single_gpu.py --cv`` prints each snapshot kept in
``results/single_gpu_cv.json`` beside the new figures, and ``readme_tables.py`` renders
each as rows of the README's one-GPU table. A new snapshot is added here, in the order
the model steps were taken: (JSON key, what the model lacked then, as the README row reads).
"""

from __future__ import annotations

#: The steps of 2026-12-05 on: (key, the model before the step, for the README rows).
MODEL_STEPS: tuple[tuple[str, str], ...] = (
    ("before_mxnet_heuristic", "2016's MXNet autotuned"),
    ("before_host_sync", "MXNet's engine not waiting for the GPU"),
    ("before_fma_issue", "one FMA issue rate on every SM"),
    ("before_k80_clock", "the K80 at its datasheet's 875 MHz"),
    ("before_amp_master_copies", "amp without its master-weight conversions"),
    ("before_kepler_winograd", "cuDNN's Winograd on Kepler too"),
    ("before_clock_overhead", "one per-kernel overhead on every GPU"),
)
