"""Render the README's accuracy tables from the figures the benchmarks wrote.

Every accuracy figure in README.md comes from a JSON file a benchmark script wrote
(``benchmarks/results/``); this script turns them into markdown and rewrites the README
between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers.
``tests/test_readme_tables.py`` fails when the README no longer matches.

    python benchmarks/accuracy_single_gpu.py --cv --record        # single_gpu_cv.json
    python benchmarks/closed_loop.py -o DIR --json benchmarks/results/closed_loop.json
    python benchmarks/accuracy_validation.py --ratchet --record   # dev_set_record.json
    python benchmarks/accuracy_collectives.py --json benchmarks/results/collectives_cv.json
    python benchmarks/accuracy_training.py --json benchmarks/results/training_cv.json
    python benchmarks/accuracy_llm.py --json benchmarks/results/llm_cv.json
    python benchmarks/heldout_lambda_non_xla.py --json benchmarks/results/heldout_lambda.json
    python benchmarks/untimed_layers.py --json benchmarks/results/untimed_layers.json
    python benchmarks/accumulation_timm1659.py --json benchmarks/results/accumulation_timm1659.json
    python benchmarks/kepler_vs_maxwell.py --json benchmarks/results/kepler_vs_maxwell.json
    python benchmarks/nccl_tests_fit.py --json benchmarks/results/nccl_tests_fit.json
    python benchmarks/collective_spread.py --json benchmarks/results/collective_spread.json
    python benchmarks/optimizer_step_tf_bert.py --json benchmarks/results/optimizer_step_tf_bert.json
    python benchmarks/measured_allreduce_dgx1.py --json benchmarks/results/measured_allreduce_dgx1.json
    python benchmarks/readme_tables.py                            # rewrite README.md
    python benchmarks/readme_tables.py --check                    # exit 1 if stale
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # imported from its file by the tests too
from cv_snapshots import MODEL_STEPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


def _num(x) -> str:
    return "-" if x is None or x != x else f"{x:.1f}"


def _fitted(fits: dict) -> list[str]:
    """One line: each fitted value on all sources, with its range over the folds."""
    if not fits:
        return []
    folds = [v for k, v in fits.items() if k != "(all sources)"]
    return ["", "Fitted (all sources; range over the leave-one-source-out folds): " + ", ".join(
        f"`{k}` {fits['(all sources)'][k]:g} ({min(f[k] for f in folds):g}-{max(f[k] for f in folds):g})"
        for k in fits["(all sources)"]) + "."]


def dev_set_table() -> str:
    r = json.loads((RESULTS / "dev_set_record.json").read_text())
    return "\n".join([
        "| dev set, shipped defaults | n | median | p90 | hard n | hard median |",
        "|---|--:|--:|--:|--:|--:|",
        f"| multi-GPU training, clustersim | {r['training_n']} | {_num(r['training_median'])} | "
        f"{_num(r['training_p90'])} | {r['training_hard_n']} | {_num(r['training_hard_median'])} |",
        f"| multi-GPU training, one-GPU x GPUs | {r['training_n']} | {_num(r['reference_median'])} | "
        f"{_num(r['reference_p90'])} | {r['training_hard_n']} | {_num(r['reference_hard_median'])} |",
        f"| collectives, clustersim (nccl backend) | {r['collectives_n']} | {_num(r['collectives_median'])} | "
        f"{_num(r['collectives_p90'])} | | |",
        f"| LLM training, clustersim | {r['llm_n']} | {_num(r['llm_median'])} | {_num(r['llm_p90'])} | | |",
        f"| LLM training, 6N at 40% MFU | {r['llm_n']} | {_num(r['llm_reference_median'])} | "
        f"{_num(r['llm_reference_p90'])} | | |",
    ])


def collectives_table() -> str:
    data = json.loads((RESULTS / "collectives_cv.json").read_text())
    lines = ["| cases | n | alpha-beta median | alpha-beta p90 | nccl LOSO median | nccl LOSO p90 "
             "| nccl LOSysO median | nccl LOSysO p90 |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for row in data["table"]:
        lines.append(f"| {row['group']} | {row['n']} | {_num(row['alpha-beta median %'])} | "
                     f"{_num(row['alpha-beta p90 %'])} | {_num(row.get('nccl (LOSO) median %'))} | "
                     f"{_num(row.get('nccl (LOSO) p90 %'))} | {_num(row.get('nccl (LOSysO) median %'))} | "
                     f"{_num(row.get('nccl (LOSysO) p90 %'))} |")
    lines += _fitted(data["fitted"])
    return "\n".join(lines)


def optimizer_step_table() -> str:
    data = json.loads((RESULTS / "optimizer_step_tf_bert.json").read_text())
    lines = ["| TensorFlow BERT-large, one V100 | measured | one fused step | as the code writes it |",
             "|---|--:|--:|--:|"]
    for family in ("fp32", "amp"):
        fused, written = data["dev_rows"]["multi_tensor"][family], data["dev_rows"]["elementwise"][family]
        lines.append(f"| NVIDIA's table (NGC 19.03, XLA), {family}, {fused['n']} configurations: median throughput "
                     f"error | - | {fused['median_signed_%']:+.1f}% | {written['median_signed_%']:+.1f}% |")
    pr255 = data["pr255"]
    lines.append(f"| google-research/bert#255, fp32, sequence 512, batch 8, examples/s | {pr255['measured']:g} | "
                 f"{pr255['multi_tensor']:g} | {pr255['elementwise']:g} |")
    pr539 = data["pr539"]
    lines.append(f"| DeepLearningExamples#539, resource variables under XLA, amp batch 3: speed-up | "
                 f"+{pr539['measured_gain_%']:.0f}% | - | {pr539['predicted_gain_%']:+.1f}% |")
    return "\n".join(lines)


def collective_spread_table() -> str:
    data = json.loads((RESULTS / "collective_spread.json").read_text())
    lines = ["| points of same-hardware systems | n | systems | oracle median | oracle p90 | model median "
             "| model p90 |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for row in data["table"]:
        lines.append(f"| {row['group']} | {row['n']} | {row['systems']} | {_num(row['oracle median %'])} | "
                     f"{_num(row['oracle p90 %'])} | {_num(row['model median %'])} | {_num(row['model p90 %'])} |")
    lines += ["", "Same-hardware classes: " + "; ".join(", ".join(c) for c in data["classes"]) + "."]
    return "\n".join(lines)


def training_table() -> str:
    data = json.loads((RESULTS / "training_cv.json").read_text())
    lines = ["| predictor | n | median | p90 | hard n | hard median | Spearman (efficiency) |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for row in data["summary"]:
        lines.append(f"| {row['predictor']} | {row['n']} | {_num(row['median %'])} | {_num(row['p90 %'])} | "
                     f"{row['hard n']} | {_num(row['hard median %'])} | "
                     f"{'-' if row['spearman'] != row['spearman'] else format(row['spearman'], '.2f')} |")
    lines += _fitted(data["fitted"])
    lines += _close_calls(data.get("close_calls", []))
    return "\n".join(lines)


def _close_calls(calls: list[dict]) -> list[str]:
    """One line: the folds whose choice a near-tie decided (accuracy_training.CLOSE_CALL)."""
    if not calls:
        return []

    def call(c: dict) -> str:
        changed = ", ".join(f"`{k}` {c['chosen'][k]:g} over {v:g}" for k, v in c["runner_up"].items())
        return f"{c['source']} ({changed}, {100 * c['margin']:.2f}%)"

    return ["", f"Close calls ({len(calls)} folds whose choice beat the runner-up by under 0.5% of the objective "
            "over the other sources; the `flipped` row decides each the other way): "
            + "; ".join(call(c) for c in calls) + "."]


def single_gpu_table() -> str:
    data = json.loads((RESULTS / "single_gpu_cv.json").read_text())
    gens = sorted(data["leave_one_gpu_out"]["by_generation_median_ape_%"])
    points = data["leave_one_gpu_out"]["n"]
    lines = [f"| one GPU ({points} points) | median | p90 | " + " | ".join(f"{g} median" for g in gens) + " |",
             "|---|--:|--:|" + "--:|" * len(gens)]

    def row(label: str, fig: dict) -> str:
        by = fig["by_generation_median_ape_%"]
        return f"| {label} | {_num(fig['median_ape_%'])} | {_num(fig['p90_ape_%'])} | " + " | ".join(
            _num(by.get(g)) for g in gens) + " |"

    before = data.get("before")
    if before:
        lines.append(row(f"before: one efficiency per precision, leave one GPU out ({before['leave_one_gpu_out']['n']} "
                         "points)", before["leave_one_gpu_out"]))
    grown = data.get("before_new_gpus")
    if grown:  # the same model on the points the dev set had before cards were added
        lines.append(row(f"shape-aware model, leave one GPU out, the {grown['leave_one_gpu_out']['n']} points "
                         "before four cards were added", grown["leave_one_gpu_out"]))
    unfused = data.get("before_fusion")
    if unfused:  # before the runs that fused their norm, add and ReLU kernels were simulated so
        lines.append(row("shape-aware model, every run unfused, leave one GPU out", unfused["leave_one_gpu_out"]))
    flat = data.get("before_conv_staging")
    if flat:  # before convolutions' share of peak depended on the tensor cores' width per SM
        lines.append(row("shape-aware model, one tensor-core efficiency for every width, leave one GPU out",
                         flat["leave_one_gpu_out"]))
    unsummed = data.get("before_fork_gradients")
    if unsummed:  # before the gradients of a tensor several layers read were summed at a cost
        for fold, label in (("leave_one_gpu_out", "GPU"), ("leave_one_source_out", "source")):
            lines.append(row(f"shape-aware model before fork sums and XLA's ReLU epilogues, leave one {label} out",
                             unsummed[fold]))
    fused_step = data.get("before_optimizer_kernels")
    if fused_step:  # before an optimizer step written per tensor launched its kernels per tensor
        for fold, label in (("leave_one_gpu_out", "GPU"), ("leave_one_source_out", "source")):
            lines.append(row(f"shape-aware model, every optimizer step one kernel, leave one {label} out",
                             fused_step[fold]))
    smaller = data.get("before_mxnet_perf")
    if smaller:  # the same model on the points before MXNet's perf.md tables (batch 1-128) joined
        for fold, label in (("leave_one_gpu_out", "GPU"), ("leave_one_source_out", "source")):
            lines.append(row(f"shape-aware model, the {smaller[fold]['n']} points before MXNet's perf.md rows, "
                             f"leave one {label} out", smaller[fold]))
    # the steps of 2026-12-05, each snapshot the model before it
    for key, model in MODEL_STEPS:
        snapshot = data.get(key)
        if snapshot:
            for fold, label in (("leave_one_gpu_out", "GPU"), ("leave_one_source_out", "source")):
                lines.append(row(f"shape-aware model, {model}, leave one {label} out", snapshot[fold]))
    lines.append(row("shape-aware model, leave one GPU out", data["leave_one_gpu_out"]))
    lines.append(row("shape-aware model, leave one generation out", data["leave_one_generation_out"]))
    lines.append(row("shape-aware model, leave one source out", data["leave_one_source_out"]))
    # (fitted on every point: the shipped defaults keep values apart, see compute.py and scenario.py)
    lines.append(row("shape-aware model, fitted on all points (in-sample)", data["in_sample"]))
    if "shipped_defaults" in data:
        lines.append(row("shape-aware model, shipped defaults (in-sample)", data["shipped_defaults"]))
    lines.append(row("FLOPs-only reference, leave one GPU out", {
        "median_ape_%": data["leave_one_gpu_out"]["flops_only_median_ape_%"],
        "p90_ape_%": data["leave_one_gpu_out"]["flops_only_p90_ape_%"], "by_generation_median_ape_%": {}}))
    fitted = ", ".join(f"`{k.split('.')[-1]}` {v:g}" for k, v in data["in_sample"]["params"].items())
    lines += ["", f"Fitted (all points): {fitted}."]
    return "\n".join(lines)


def measured_here_table() -> str:
    data = json.loads((RESULTS / "closed_loop.json").read_text())
    lines = ["| run | threads | measured (samples/s) | predicted | rel. error | load before / after |",
             "|---|--:|--:|--:|--:|--:|"]
    for r in data["runs"]:
        procs = f"{r['procs']} proc" + ("s" if r["procs"] > 1 else "")
        lines.append(f"| {r['model']} {procs}, batch {r['batch']} | {r['threads']} | {r['measured']:.3g} | "
                     f"{r['predicted']:.3g} | {r['rel_error'] * 100:+.1f}% | {r['load_before']:.2f} / "
                     f"{r['load_after']:.2f} |")
    s = data["summary"]
    lines += ["", f"Absolute error over {s['n']} runs: median {s['median_ape']:.1f}%, mean {s['mean_ape']:.1f}%, "
              f"max {s['max_ape']:.1f}% (targets of #15: median <= 5%, max <= 15%)."]
    return "\n".join(lines)


def llm_table() -> str:
    data = json.loads((RESULTS / "llm_cv.json").read_text())
    lines = ["| predictor | n | median | p90 |", "|---|--:|--:|--:|"]
    lines += [f"| {r['predictor']} | {r['n']} | {_num(r['median %'])} | {_num(r['p90 %'])} |" for r in data["summary"]]
    lines += ["", "| source | n | 6N at 40% MFU | clustersim (defaults) | clustersim (LOSO) | fitted |",
              "|---|--:|--:|--:|--:|--:|"]
    lines += [f"| {r['source']} | {r['n']} | {_num(r['6N at 40% MFU'])} | {_num(r['clustersim (defaults)'])} | "
              f"{_num(r['clustersim (LOSO)'])} | {r['fitted']:g} |" for r in data["per_source"]]
    lines += ["", "Rows not simulated (no global batch or layout, LoRA, CPU offload, no shapes): "
              f"{data['not_simulated']}."]
    return "\n".join(lines + _fitted(data["fitted"]))


def heldout_lambda_table() -> str:
    rows = json.loads((RESULTS / "heldout_lambda.json").read_text())
    names = {"fp16, batch-norm models": "fp16, ResNet-50/152 and Inception-v3"}
    lines = ["| held out, Lambda without XLA | n | median | p90 | one-GPU x GPUs median | one-GPU x GPUs p90 |",
             "|---|--:|--:|--:|--:|--:|"]
    lines += [f"| {names.get(r['group'], r['group'])} | {int(r['n'])} | {_num(r['median %'])} | {_num(r['p90 %'])} | "
              f"{_num(r['reference median %'])} | {_num(r['reference p90 %'])} |" for r in rows]
    return "\n".join(lines)


def untimed_layers_table() -> str:
    data = json.loads((RESULTS / "untimed_layers.json").read_text())
    names = {"fitted": "parameters fitted on the other models", "before": "unfitted (efficiency 1, 20 us per kernel)"}
    lines = ["| untimed layers, one model left out | model-batches | median | max | layers' mean abs log error |",
             "|---|--:|--:|--:|--:|"]
    lines += [f"| {names[k]} | {v['n']} | {_num(v['median_%'])} | {_num(v['max_%'])} | "
              f"{v['layer_log_error_median']:.2f} |" for k, v in data["summary"].items()]
    return "\n".join(lines)


def accumulation_table() -> str:
    rows = json.loads((RESULTS / "accumulation_timm1659.json").read_text())
    names = {"timm-1659-1-node-x-3-gpus": "1 node x 3 GPUs", "timm-1659-3-nodes-x-1-gpu": "3 nodes x 1 GPU, 10 Gb/s"}
    lines = ["| pytorch-image-models#1659, MaxViT-L batch 8 | micro-batches | measured | predicted | error |",
             "|---|--:|--:|--:|--:|"]
    lines += [f"| {names.get(r['configuration'], r['configuration'])} | {r['micro_batches']} | {r['measured']:.1f} | "
              f"{r['predicted']:.1f} | {(r['predicted'] / r['measured'] - 1) * 100:+.1f}% |" for r in rows]
    return "\n".join(lines)


def kepler_table() -> str:
    rows = json.loads((RESULTS / "kepler_vs_maxwell.json").read_text())
    lines = ["| convnet-benchmarks | library | pass | Titan Black / Titan X measured | model | "
             "model, issue share 1 |", "|---|---|---|--:|--:|--:|"]
    lines += [f"| {r['workload']} | {r['library']} | {r['pass']} | {r['measured_ratio']:.2f} | "
              f"{r['model_ratio']:.2f} | {r['model_ratio_share_1']:.2f} |" for r in rows]
    off = [r["model_ratio"] / r["measured_ratio"] - 1 for r in rows]
    off1 = [r["model_ratio_share_1"] / r["measured_ratio"] - 1 for r in rows]
    lines += ["", f"Median model / measured ratio - 1 over the {len(rows)} passes: "
              f"{100 * statistics.median(off):+.1f}% with the issue share, "
              f"{100 * statistics.median(off1):+.1f}% without it."]
    return "\n".join(lines)


def nccl_tests_fit_table() -> str:
    rows = json.loads((RESULTS / "nccl_tests_fit.json").read_text())["experiments"]
    lines = ["| fitted on -> held out (same machine) | fitted | in-sample median, shipped -> fitted | "
             "held-out median, shipped -> fitted |", "|---|---|--:|--:|"]
    for r in rows:
        fitted = ", ".join(f"`{k}` {v:.3g}" for k, v in r["fitted"].items()) or "-"
        held = (f"{r['held_out_before_%']:.1f} -> {r['held_out_after_%']:.1f}" if "held_out_rows" in r else "-")
        lines.append(f"| {r['experiment']} | {fitted} | {r['in_sample_before_%']:.1f} -> "
                     f"{r['in_sample_after_%']:.1f} | {held} |")
    return "\n".join(lines)


def measured_allreduce_table() -> str:
    data = json.loads((RESULTS / "measured_allreduce_dgx1.json").read_text())
    lines = ["| source (8x V100-SXM2, one server) | rows | median, modelled allreduce | median, measured allreduce |",
             "|---|--:|--:|--:|"]
    lines += [f"| {r['source']} | {r['rows']} | {r['modelled_%']:.1f} | {r['measured_%']:.1f} |"
              for r in data["per_source"]]
    o = data["overall"]
    lines.append(f"| all | {o['rows']} | {o['modelled_median_%']:.1f} | {o['measured_median_%']:.1f} |")
    lines += ["", "Allreduce of 8 V100s, modelled / measured: " + ", ".join(
        f"{b['bucket_mib']} MiB {b['modelled_us']:.0f} / {b['measured_us']:.0f} us" for b in data["buckets"]) + "."]
    return "\n".join(lines)


def fork_gradients_table() -> str:
    data = json.loads((RESULTS / "fork_gradients_torch7.json").read_text())
    lines = [f"| ResNet-18 to -152, Torch7 (weight-gradient factor {data['wgrad_factor']:g}) | forward | backward | "
             "backward - forward (points) |", "|---|--:|--:|--:|"]
    lines += [f"| fork sums {style} | {r['forward_%']:+.1f}% | {r['backward_%']:+.1f}% | "
              f"{r['backward_minus_forward_points']:+.1f} |" for style, r in data["resnet"].items()]
    vgg = data["vgg_backward_minus_forward_points"]
    lines += ["", f"{data['rows']} timing rows, compute efficiency {data['compute_efficiency']:g}. VGG (no forks), "
              "backward - forward by weight-gradient factor: "
              + ", ".join(f"{float(w):g}: {v:+.1f}" for w, v in vgg.items()) + " points."]
    return "\n".join(lines)


TABLES = {"single-gpu-cv": single_gpu_table, "fork-gradients": fork_gradients_table,
          "optimizer-step": optimizer_step_table,
          "measured-here": measured_here_table, "dev-set": dev_set_table,
          "collectives-cv": collectives_table, "collective-spread": collective_spread_table,
          "training-cv": training_table, "llm-cv": llm_table, "heldout-lambda": heldout_lambda_table,
          "untimed-layers": untimed_layers_table, "accumulation": accumulation_table,
          "kepler-vs-maxwell": kepler_table, "nccl-tests-fit": nccl_tests_fit_table,
          "measured-allreduce": measured_allreduce_table}


def render(text: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            print("README.md accuracy tables are stale: run python benchmarks/readme_tables.py")
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
