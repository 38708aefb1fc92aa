"""The fork-gradient sums held against the one source that times backward on its own.

jcjohnson/cnn-benchmarks timed the forward and the backward pass of VGG-16/19 and
ResNet-18 to -152 separately (Torch7, cuDNN 5.1, batch 16, four GPUs: GTX 1080, GTX 1080
Ti, Pascal and Maxwell Titan X). VGG has no forks; a ResNet has one per block, whose
gradients Lua Torch sums with a copy and an in-place add (``nn.ConcatTable``). So:

1. VGG is the control. The weight-gradient factor (``kernel_efficiency.WGRAD_FACTOR``)
   is chosen where VGG's median backward error equals its median forward error (the
   forward pass does not depend on it);
2. at that factor, a ResNet's backward error minus its forward error measures what the
   model's backward misses. It is printed with the fork sums not costed, and costed as
   each ``workload.fork_gradients`` style would cost them.

Whatever the model gets wrong about these cards and this cuDNN in general is common to
both passes and cancels in the difference; the forks are what is left.

    python benchmarks/fork_gradients_torch7.py [--json benchmarks/results/fork_gradients_torch7.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_single_gpu as single  # noqa: E402

from simulator import kernel_efficiency  # noqa: E402
from simulator.build import forget_shared_clusters  # noqa: E402

WGRAD_FACTORS = (1.0, 1.125, 1.25, 1.375, 1.5)
STYLES = ("not costed", "fused", "sum", "copy_add")
COMPUTE_EFFICIENCY = 0.8  # the fp32 figure the one-GPU fit chooses; both passes scale with it alike


@contextlib.contextmanager
def model_state(wgrad: float, style: str) -> Iterator[str | None]:
    """WGRAD_FACTOR set, and the fork sums not costed for ``not costed``; yields the
    ``workload.fork_gradients`` to simulate (None for the not-costed case)."""
    saved_wgrad, saved_traffic = kernel_efficiency.WGRAD_FACTOR, kernel_efficiency.fork_gradient_traffic
    kernel_efficiency.WGRAD_FACTOR = wgrad
    if style == "not costed":
        kernel_efficiency.fork_gradient_traffic = lambda layer, fork_gradients: (0.0, 0)
    forget_shared_clusters()
    try:
        yield None if style == "not costed" else style
    finally:
        kernel_efficiency.WGRAD_FACTOR, kernel_efficiency.fork_gradient_traffic = saved_wgrad, saved_traffic
        forget_shared_clusters()


def torch7_cases() -> list[single.Case]:
    frames = [single.read_rows(single.DEFAULT_CSV), *(single.read_rows(p) for p in single.EXTRA_CSVS)]
    cases, _ = single.select_cases(pd.concat(frames, ignore_index=True), include_approx=False, ampere_fp32="skip")
    return [c for c in cases if c.source.startswith("jcjohnson") and c.metric in ("fwd_time_ms", "bwd_time_ms")]


def pass_errors(cases: list[single.Case], wgrad: float, style: str) -> pd.DataFrame:
    """Median forward and backward error (predicted / measured time - 1) of each family."""
    with model_state(wgrad, style) as fork_gradients:
        for c in cases:
            c.workload = {k: v for k, v in c.workload.items() if k != "fork_gradients"}
            if fork_gradients is not None:
                c.workload["fork_gradients"] = fork_gradients
        res = single.evaluate(cases, [f"workload.compute_efficiency={COMPUTE_EFFICIENCY}"], {}, fast=True)
    res["family"] = np.where(res["model"].str.startswith("vgg"), "VGG", "ResNet")
    return res.groupby(["family", "metric"])["rel_err"].median().unstack()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    cases = torch7_cases()
    families = pd.Series(["VGG" if c.model.startswith("vgg") else "ResNet" for c in cases])
    print(f"{len(cases)} timing rows of jcjohnson/cnn-benchmarks (Torch7): "
          f"{(families == 'VGG').sum()} VGG, {(families == 'ResNet').sum()} ResNet; "
          f"compute efficiency {COMPUTE_EFFICIENCY}")
    print("\n1. VGG (no forks): median error of each pass by weight-gradient factor")
    control = {}
    for wgrad in WGRAD_FACTORS:
        vgg = pass_errors(cases, wgrad, "not costed").loc["VGG"]
        control[wgrad] = float(vgg["bwd_time_ms"] - vgg["fwd_time_ms"])
        print(f"   {wgrad:5.3f}: forward {100 * vgg['fwd_time_ms']:+6.1f}%  backward {100 * vgg['bwd_time_ms']:+6.1f}%"
              f"  backward - forward {100 * control[wgrad]:+6.1f} points")
    wgrad = min(WGRAD_FACTORS, key=lambda w: abs(control[w]))
    print(f"\n2. ResNets at weight-gradient factor {wgrad} (VGG's passes balanced): median error per pass")
    report: dict = {"rows": len(cases), "compute_efficiency": COMPUTE_EFFICIENCY,
                    "vgg_backward_minus_forward_points": {str(w): round(100 * v, 2) for w, v in control.items()},
                    "wgrad_factor": wgrad, "resnet": {}}
    for style in STYLES:
        res = pass_errors(cases, wgrad, style).loc["ResNet"]
        gap = float(res["bwd_time_ms"] - res["fwd_time_ms"])
        report["resnet"][style] = {"forward_%": round(100 * float(res["fwd_time_ms"]), 2),
                                   "backward_%": round(100 * float(res["bwd_time_ms"]), 2),
                                   "backward_minus_forward_points": round(100 * gap, 2)}
        print(f"   {style:11s} forward {100 * res['fwd_time_ms']:+6.1f}%  backward {100 * res['bwd_time_ms']:+6.1f}%"
              f"  backward - forward {100 * gap:+6.1f} points")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
