"""How well a profile predicts the layers it did not time, with and without the fit.

A scenario calibrated by a profile takes the profile's measured time for every layer the
probe timed; the others are estimated by the layer-time model, since 2026-12-04 with its
device parameters (compute and memory efficiency, per-kernel overhead) fitted on the
profile's timed layers (``simulator/layer_fit.py``). This script measures what the fit
buys on the committed profiles, leaving one model out: fit on the other models' layers,
predict the held-out model's, compare with what the probe measured for it.

Per profile and held-out model it prints, at every batch the probe measured, the error
of the held-out model's forward + backward (the sum of its timed layer passes) and the
time-weighted mean |log error| of its layers, for

* ``fitted``: the parameters fitted on the other models;
* ``before``: the estimate without a fit (compute and memory efficiency 1 on the
  profile's fitted large-matmul rate and copy bandwidth, the scenario default 20 us per
  kernel), what untimed layers got before.

Every profile here is a CPU one (the probe has not run on a GPU for this repository):
the figures say what the fit does on those devices, not on a GPU.

    python benchmarks/untimed_layers.py [--json benchmarks/results/untimed_layers.json]

(the README's table comes from that JSON: ``benchmarks/readme_tables.py``)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from simulator.calibrated_layers import ProfiledDevice
from simulator.compute import roofline_costs
from simulator.layer_fit import PARAMETERS, fit_layer_model, objective, timed_layers
from simulator.profile import load_profile
from simulator.zoo import get_model

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "calibration" / "profiles").glob("*.json"))
BEFORE = (1.0, 1.0, 20e-6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    rows: list[dict] = []
    whole: dict[str, list[float]] = {"fitted": [], "before": []}
    layers: dict[str, list[float]] = {"fitted": [], "before": []}
    for path in PROFILES:
        profile = load_profile(path)
        eff = profile.efficiency
        fit = eff.fit("matmul") or eff.fit("conv")
        if fit is None or eff.memory_bandwidth_bytes_per_s is None or len(profile.models) < 2:
            continue
        device = ProfiledDevice(profile.environment.device_name, fit.peak_flops_per_s,
                                eff.memory_bandwidth_bytes_per_s / 1e9)

        def estimate(model, batch, ce, me, oh, device=device):
            # (against the probe's per-layer timings, which leave out the sums of forked gradients)
            costs = roofline_costs(model, device, precision="fp32", batch=batch, compute_efficiency=ce,
                                   memory_efficiency=me, layer_overhead_s=oh, optimizer="momentum",
                                   fork_gradients=None)
            return costs.forward_s, costs.backward_s

        data = {m.model: timed_layers(get_model(m.model), m.samples) for m in profile.models}
        print(f"{path.name}: {profile.environment.device_name}, matmul {fit.peak_flops_per_s / 1e9:.0f} GFLOP/s, "
              f"copy {eff.memory_bandwidth_bytes_per_s / 1e9:.1f} GB/s")
        for held, timed in data.items():
            train = [t for name, ts in data.items() if name != held for t in ts]
            fitted = fit_layer_model(train, estimate, BEFORE, PARAMETERS)
            assert fitted is not None
            values = {"fitted": (fitted.compute_efficiency, fitted.memory_efficiency, fitted.layer_overhead_s),
                      "before": BEFORE}
            line = []
            row = {"profile": path.name, "model": held, "batches": [t.batch for t in timed],
                   "fitted_values": {"compute_efficiency": fitted.compute_efficiency,
                                     "memory_efficiency": fitted.memory_efficiency,
                                     "layer_overhead_us": fitted.layer_overhead_s * 1e6}}
            for label, v in values.items():
                errors = []
                for t in timed:
                    f, b = estimate(t.model, t.batch, *v)
                    ok_f, ok_b = np.isfinite(t.forward), np.isfinite(t.backward)
                    measured = t.forward[ok_f].sum() + t.backward[ok_b].sum()
                    errors.append(100 * ((f[ok_f].sum() + b[ok_b].sum()) / measured - 1))
                err = objective(timed, estimate, v)
                whole[label] += [abs(e) for e in errors]
                layers[label].append(err)
                line.append(f"{label} {' '.join(f'{e:+.1f}%' for e in errors)} (layers {err:.3f})")
                row[label] = {"whole_model_error_%": errors, "layer_log_error": err}
            rows.append(row)
            batches = ",".join(str(t.batch) for t in timed)
            print(f"  {held:9s} batches {batches}: " + " | ".join(line)
                  + f" | fitted on the others: compute {fitted.compute_efficiency:.3g}, memory "
                    f"{fitted.memory_efficiency:.3g}, overhead {fitted.layer_overhead_s * 1e6:.3g} us")
    if not whole["fitted"]:
        print("no profile with two or more timed models", file=sys.stderr)
        return 1
    print()
    summary = {}
    for label in ("fitted", "before"):
        w = np.array(whole[label])
        summary[label] = {"n": len(w), "median_%": float(np.median(w)), "max_%": float(w.max()),
                          "layer_log_error_median": float(np.median(layers[label])), "models": len(layers[label])}
        print(f"{label:6s}: held-out whole model |error| median {np.median(w):.1f}%, max {w.max():.1f}% "
              f"({len(w)} model-batches); layers' time-weighted mean |log error| median "
              f"{np.median(layers[label]):.3f} ({len(layers[label])} held-out models)")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
