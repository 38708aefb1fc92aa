"""How well a calibration profile's fits reproduce its own measurements.

    python benchmarks/calibration_report.py calibration/profiles/cpu-amd-epyc-2core.json

Prints, per model and batch: the simulator's per-layer times (built from the profile)
against the probe's medians (median and worst relative error, time-weighted error of
the sum) and the sum of layers against the whole model timed in one piece; per
collective and world size: the simulated time against the measured median at every
size (worst error, piecewise and single-line fits).
"""

from __future__ import annotations

import argparse

import numpy as np

from simulator.engine import build
from simulator.loading import load_scenario
from simulator.profile import load_profile


def main(path: str) -> None:
    profile = load_profile(path)
    print(f"{path}: {profile.device_label}, probe wall time {profile.provenance.wall_s:.0f} s")
    for m in profile.models:
        measured = {(s.layer, s.phase, s.batch): s.timing.median_s for s in m.samples}
        whole = {w.batch: w.timing.median_s for w in m.whole_model}
        for batch in m.batches:
            sim = build(load_scenario({"calibration": path, "cluster": {"gpus_per_node": 1},
                                       "workload": {"model": m.model, "batch_per_gpu": batch}}))
            errors, sim_total, meas_total = [], 0.0, 0.0
            for i, layer in enumerate(sim.model.layers):
                for phase, t in (("forward", sim.costs.forward_s[i]), ("backward", sim.costs.backward_s[i])):
                    want = measured[layer.name, phase, batch]
                    errors.append(abs(t - want) / want)
                    sim_total += t
                    meas_total += want
            errors = np.array(errors)
            line = (f"  {m.model:9s} batch {batch:2d}: per-layer error median {np.median(errors):6.1%}, "
                    f"p90 {np.percentile(errors, 90):6.1%}, max {errors.max():6.1%}; "
                    f"sum {sim_total * 1e3:8.2f} ms vs measured {meas_total * 1e3:8.2f} ms "
                    f"({abs(sim_total - meas_total) / meas_total:5.1%})")
            if batch in whole:
                line += f"; layer sum / whole model {meas_total / whole[batch]:.2f}"
            print(line)
    if profile.collectives:
        for f in profile.collectives.fits:
            samples = [s for s in profile.collectives.samples
                       if (s.collective, s.world_size, s.nodes) == (f.collective, f.world_size, f.nodes)]
            piece = max(abs(f.time_s(s.bytes) - s.timing.median_s) / s.timing.median_s for s in samples)
            line_err = max(abs(f.fit(s.bytes) - s.timing.median_s) / s.timing.median_s for s in samples)
            big = max(samples, key=lambda s: s.bytes)
            beta = "latency-only" if f.fit.beta_bytes_per_s is None else f"{f.fit.beta_bytes_per_s / 1e9:6.2f} GB/s"
            print(f"  {f.collective:14s} n={f.world_size}: alpha {f.fit.alpha_s * 1e6:8.1f} us, beta "
                  f"{beta}; worst error piecewise {piece:5.1%} "
                  f"({len(f.pieces)} pieces), one line {line_err:6.1%}; busbw at {big.bytes >> 20} MiB "
                  f"{big.busbw_bytes_per_s / 1e9:.2f} GB/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="calibration profile (JSON)")
    main(parser.parse_args().profile)
