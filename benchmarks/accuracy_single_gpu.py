"""Single-GPU accuracy of the compute model against published measurements.

Reads the published-cases CSV (``../shared/measured/published_cases.csv`` from the repo
root), keeps the ONE-GPU rows (``total_gpus == 1``) whose metric is a throughput
(``images_per_sec`` / ``sequences_per_sec``) or a whole-model time (``fwd_time_ms`` /
``bwd_time_ms`` / ``fwd_bwd_time_ms``), maps their free-text model and GPU onto zoo and
catalog names with the explicit tables below, infers the precision from the framework
(and, failing that, the notes) text, simulates each case on one GPU and prints

* one line per case: source, model, GPU, precision, batch, metric, measured, predicted,
  relative error (predicted / measured - 1, in the metric's own unit);
* the rows left out, grouped by reason;
* a summary: n, median and 90th-percentile absolute percentage error (APE), overall and
  by precision family (fp32 on CUDA cores vs tensor cores), with the signed median
  "speed bias" (predicted speed / measured speed - 1: > 0 means the simulator is too
  fast) and, side by side, a FLOPs-only reference predictor
  (time = 3 x forward FLOPs / (peak x compute efficiency); no memory term, no overhead).

Counting: the timing sources report forward, backward and their sum for one
configuration, three rows that are not independent. The headline summary ("primary")
therefore counts one point per configuration: throughput rows and ``fwd_bwd_time_ms``
rows; forward-only and backward-only errors are summarized on their own lines.

Predicted values: throughputs come from ``simulate()``; times are the sums of the
simulator's per-layer forward / backward costs (``engine.build(...).costs``), without the
optimizer step, which the timing sources leave out too.

Mappings are conservative: a row is used only when the zoo model is the same network
(same layer structure; ResNet v1 vs v1.5 stride placement is accepted), the catalog GPU
is the same card (memory size or form factor known where they change the figures) and
the precision is unambiguous. Rows mapped only approximately (a different AlexNet or
GoogLeNet variant, an unconfirmed sequence length) are left out unless
``--include-approx``. "fp32" on Ampere or newer is ambiguous (TF32 is on by default in
TensorFlow >= 2.4 and in cuDNN convolutions under PyTorch >= 1.7) and is left out unless
``--ampere-fp32 fp32|tf32`` says how to read it.

    python benchmarks/accuracy_single_gpu.py [--csv PATH] [--set KEY=VALUE ...]
        [--set-fp32 KEY=VALUE ...] [--set-tc KEY=VALUE ...] [--include-approx] [--ampere-fp32 skip|fp32|tf32] [--family fp32|tensor-core]
        [--no-table] [--sweep KEY=V1,V2,... [--sweep ...]] [--best N]

``--set`` overrides apply to every scenario (e.g. ``--set workload.compute_efficiency=0.6``);
``--set-fp32`` / ``--set-tc`` only to the fp32 / tensor-core cases (after ``--set``), so
one run can try a per-family default such as compute efficiency.
``--sweep`` repeats the whole evaluation once per value and prints only the primary
summaries; several ``--sweep`` options form a grid, and ``--best N`` lists, per precision
family, the N grid points with the lowest median APE (p90 breaks ties).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # imported from its file by the tests too
from cv_snapshots import MODEL_STEPS  # noqa: E402

from simulator import compute, kernel_efficiency, load_scenario, simulate
from simulator.build import forget_shared_clusters
from simulator.catalog import get_gpu
from simulator.compute import TENSOR_CORE_PRECISIONS, default_compute_efficiency
from simulator.engine import build
from simulator.errors import ClusterSimError
from simulator.scenario import WorkloadSpec
from simulator.validation.run import workload_for_text
from simulator.zoo import get_model

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO_ROOT / ".." / "shared" / "measured" / "published_cases.csv"

THROUGHPUT_METRICS = ("images_per_sec", "sequences_per_sec")
TIME_METRICS = ("fwd_time_ms", "bwd_time_ms", "fwd_bwd_time_ms")
PRIMARY_METRICS = (*THROUGHPUT_METRICS, "fwd_bwd_time_ms")

OK, APPROX = "ok", "approx"

# -- Model mapping: exact CSV text -> (zoo model, sequence length, confidence, note) ----
# Anything not listed is left out as "model not in the zoo".
MODEL_MAP: dict[str, tuple[str, int | None, str, str]] = {
    # ResNets: torchvision (the zoo) follows fb.resnet.torch (stride in the 3x3 conv);
    # NVIDIA's "v1.5" is the same network; MXNet's example resnet is pre-activation with
    # the same convolutions; tf_cnn_benchmarks "resnet50"/"resnet152" are v1 (stride in
    # the first 1x1: same layers and parameters, about 6% fewer FLOPs).
    "ResNet-50 v1.5": ("resnet50", None, OK, "NVIDIA RN50 v1.5 = torchvision resnet50"),
    "ResNet-18": ("resnet18", None, OK, "fb.resnet.torch / MXNet example"),
    "ResNet-34": ("resnet34", None, OK, "fb.resnet.torch / MXNet example"),
    "ResNet-50": ("resnet50", None, OK, "fb.resnet.torch / MXNet example"),
    "ResNet-101": ("resnet101", None, OK, "fb.resnet.torch / MXNet example"),
    "ResNet-152": ("resnet152", None, OK, "fb.resnet.torch / MXNet example"),
    "resnet50": ("resnet50", None, OK, "tf_cnn_benchmarks resnet50 (v1 stride placement)"),
    "resnet152": ("resnet152", None, OK, "tf_cnn_benchmarks resnet152 (v1 stride placement)"),
    "inception3": ("inception_v3", None, OK, "tf_cnn_benchmarks inception3, 299x299"),
    "Inception-v3": ("inception_v3", None, OK, "MXNet example Inception-v3, 299x299"),
    "VGG-16": ("vgg16", None, OK, "VGG model D"),
    "VGG-19": ("vgg19", None, OK, "VGG model E"),
    "vgg16": ("vgg16", None, OK, "tf_cnn_benchmarks vgg16"),
    "AlexNet (One Weird Trick paper) (input 128x3x224x224)": (
        "alexnet", None, OK, "single-tower OWT AlexNet = torchvision alexnet"),
    "BERT-large pretraining seq128": ("bert_large", 128, OK, "encoder; MLM/NSP heads not in the zoo"),
    "BERT-large pretraining seq512": ("bert_large", 512, OK, "encoder; MLM/NSP heads not in the zoo"),
    "BERT-large SQuAD fine-tuning seq384": ("bert_large", 384, OK, "encoder; span head is negligible"),
    # NVIDIA's TensorFlow BERT table: its scripts at the table's commit (12c7bc2) pass
    # --max_seq_length=384 (scripts/run_squad.sh).
    "BERT-large SQuAD v1.1 fine-tuning (seq len 384 per script default; verify)": (
        "bert_large", 384, OK, "encoder; run_squad.sh of the README's commit sets --max_seq_length=384"),
    # Approximate: opt in with --include-approx.
    "AlexNet": ("alexnet", None, APPROX,
                "jcjohnson uses BVLC AlexNet (grouped convs, LRN, 96-256-384-384-256), not OWT"),
    "alexnet": ("alexnet", None, APPROX, "tf_cnn_benchmarks alexnet: conv4 384 wide, ~17% more FLOPs"),
    "Inception-V1": ("googlenet", None, APPROX,
                     "soumith/inception.torch GoogLeNet; zoo googlenet is torchvision's (batch norm)"),
    "GoogleNet V1 (input 128x3x224x224)": ("googlenet", None, APPROX,
                                           "convnet-benchmarks GoogLeNet; normalization differs from zoo"),
    "GoogLeNet (ILSVRC12)": ("googlenet", None, APPROX,
                             "Caffe bvlc_googlenet (LRN, auxiliary classifiers in training)"),
}

# -- GPU mapping: exact CSV text -> catalog name (None: known but ambiguous) -----------
GPU_MAP: dict[str, str | None] = {
    "A100 80GB (DGX A100)": "A100-SXM4-80GB",
    "A100 40GB (DGX A100)": "A100-SXM4-40GB",
    "A100 40GB PCIe": "A100-PCIe-40GB",
    "V100 16GB (DGX-1)": "V100-SXM2-16GB",
    "V100 32GB (DGX-1)": "V100-SXM2-32GB",
    "V100 32GB (DGX-2)": "V100-SXM2-32GB",  # DGX-2's SXM3 V100: same rated 15.7 / 125 TFLOPS
    "V100-SXM2-32GB": "V100-SXM2-32GB",
    "RTX 2080Ti": "RTX-2080Ti",
    "RTX 3090": "RTX-3090",
    "GTX 1080Ti": "GTX-1080Ti",
    "GTX 1080 Ti": "GTX-1080Ti",
    "Pascal Titan X": "TitanX-Pascal",
    "Maxwell Titan X": "TitanX-Maxwell",
    "GeForce GTX Titan X (Maxwell)": "TitanX-Maxwell",
    "K80 (single GPU die)": "K80",
    # Added from their datasheets without refitting anything (#14): GPUs the model was
    # never fitted on. Lambda's "RTX 8000" is the Quadro card (the catalog entry is the
    # actively cooled one; the passive server card is rated about 9% lower).
    "GTX 1080": "GTX-1080",
    "RTX 3080": "RTX-3080",
    "RTX A6000": "RTX-A6000",
    "RTX 8000": "Quadro-RTX-8000",
    # MXNet's perf.md training tables (benchmarks/data/mxnet_perf_faq_one_gpu.csv): EC2
    # g3.4xlarge holds one GPU of an M60 board; p3.2xlarge one V100 SXM2 16 GB.
    "M60 (single GPU of the board, EC2 g3.4xlarge)": "M60",
    "V100 16GB (EC2 p3.2xlarge)": "V100-SXM2-16GB",
    # the same tables of December 2016: an M40 of either memory size (same compute and
    # bandwidth) and a DGX-1's P100 SXM2
    "M40 (12 or 24 GB not stated)": "M40",
    "P100 (DGX-1)": "P100-SXM2-16GB",
    # Left out on purpose: the laptop Max-Q cards ("RTX 2080 SUPER MAX-Q", "RTX 2070
    # MAX-Q", "RTX 2080 MAX-Q") are power-limited parts whose clocks (and so peaks)
    # depend on the laptop's power and cooling design, so no datasheet figure applies.
    # Ambiguous: PCIe (14 TFLOPS) or SXM2 (15.7) not stated.
    "V100 32GB": None,
    # Ambiguous: P100 PCIe 12 GB (549 GB/s) or 16 GB (732 GB/s) not stated.
    "P100-PCIe (Dell PowerEdge C4130)": None,
}

# The run set behind each card's summary figures: the logs in the same repository
# (LambdaColdStorage/lambda-tensorflow-benchmark, logs/<name>.logs) whose throughputs
# equal the summary table's to the unit at every GPU count. Every one of them prints
# "Compiled cluster using XLA!" (TF_XLA_FLAGS=--tf_xla_auto_jit=2, the repository's
# documented command); the V100 32GB runs (Platinum-Tesla_V100-SXM3-32GB_HP16_TF2_2)
# print nothing of the kind and are left out of this table.
LAMBDA_XLA_LOGS = {
    "RTX 2080Ti": "Gold_6230-GeForce_RTX_2080_Ti_XLA_trt_TF1_15",
    "RTX 2080Ti NVLink": "Gold_6230-GeForce_RTX_2080_Ti_NVLink_XLA_trt_TF1_15",
    "RTX 8000": "Gold_6230-Quadro_RTX_8000_XLA_trt_TF1_15",
    "RTX 8000 NVLink": "Gold_6230-Quadro_RTX_8000_NVLink_XLA_trt_TF1_15",
    "RTX 3080": "3960X-GeForce_RTX_3080_XLA",
    "RTX 3090": "3970X-GeForce_RTX_3090_XLA",
    "RTX A6000": "7502-RTX_A6000_XLA_TF1_15",
    "A100 40GB PCIe": "7502-A100-PCIE-40GB",
}
XLA_TEXT = "XLA auto-clustering (TF_XLA_FLAGS=--tf_xla_auto_jit=2)"

# Rows whose run is known to be broken, left out with the evidence: (source pattern,
# exact GPU text, framework pattern, reason). The RTX 3090's fp16 rows in Lambda's
# summary table come from logs/3970X-GeForce_RTX_3090_XLA.logs (TF 1.15, Nov 2020),
# whose fp16 ResNet-50 (400 img/s, batch 96) is slower than the same run set's fp32
# (554, batch 112) and whose fp16 is 0.72-1.56x its fp32 where every other Ampere run
# set of the repository measures 1.4-2.5x. Lambda's rerun of the card
# (logs/7662-GeForce_RTX_3090.logs, TF 2.4, Feb 2021) agrees with the old run's fp32
# within 3-9% (ResNet-50 568 vs 554, ResNet-152 212 vs 195, VGG-16 325 vs 311,
# Inception-v3 380 vs 350) and measures fp16 at 1.69-2.21x its fp32: its fp16 rows
# (EXTRA_CSVS) take the old ones' place.
#
# The K80 rows of MXNet's image-classification README "Speed and Memory Footprint" table
# (under "Pre-trained Models": ResNet-18 ... ResNet-152, Inception-BN at batch 32) are
# not training throughputs, though the shared file reads them so: the memory column
# (548-897 MB at batch 32) is an inference footprint (training Inception-v3 at batch 64
# takes 10 GB, the same README's FAQ says), and the same README's training table
# ("Scalability Results", one K80 of a p2.16xlarge, batch 32) gives ResNet-152 20.08
# images/s where this one gives 57: the same 1.3-1.4 TFLOP/s counted once (forward)
# or three times (training). The training rows (benchmarks/data/mxnet_p2_one_gpu.csv)
# take their place.
SUPERSEDED = (
    (r"Lambda Labs lambda-tensorflow-benchmark summary", "RTX 3090", r"\bfp16\b",
     "superseded: the 3970X run's fp16 path is broken (fp16 ResNet-50 below its fp32); Lambda's TF 2.4 rerun "
     "is used (benchmarks/data/lambda_rtx3090_tf24.csv)"),
    (r"Speed and Memory Footprint", "K80 (single GPU die)", r"MXNet",
     "misread: an inference table (548-897 MB at batch 32; the README's training table is 2.8x slower on "
     "ResNet-152); its training rows are used (benchmarks/data/mxnet_p2_one_gpu.csv)"),
)
# One-GPU rows kept here rather than in the shared file, read after it (see SUPERSEDED).
EXTRA_CSVS = (REPO_ROOT / "benchmarks" / "data" / "lambda_rtx3090_tf24.csv",
              REPO_ROOT / "benchmarks" / "data" / "mxnet_p2_one_gpu.csv",
              REPO_ROOT / "benchmarks" / "data" / "server_gear_one_gpu.csv",
              REPO_ROOT / "benchmarks" / "data" / "mxnet_perf_faq_one_gpu.csv")


def run_framework(source: str, framework: str, gpu_text: str) -> str:
    """A row's framework text with what the runs' own logs add: Lambda's XLA runs say so."""
    if re.search(r"Lambda", source) and gpu_text.strip() in LAMBDA_XLA_LOGS and XLA_TEXT not in framework:
        return f"{framework}; {XLA_TEXT}"
    return framework


def read_rows(path: Path) -> pd.DataFrame:
    """A published-cases CSV as text columns (empty cells NaN, nothing else parsed)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def superseded(source: str, gpu_text: str, framework: str) -> str | None:
    """Why a row is left out as a broken or misread run (SUPERSEDED), or None."""
    for source_pat, gpu, framework_pat, reason in SUPERSEDED:
        if gpu_text == gpu and re.search(source_pat, source) and re.search(framework_pat, framework):
            return reason
    return None


TENSOR_CORE_ARCHS = frozenset({"Volta", "Turing", "Ampere", "Hopper"})
NON_CUDNN = re.compile(r"caffe native kernels", re.I)

# Short source labels: (pattern on the source text, label).
SOURCE_LABELS = (
    (r"DeepLearningExamples.*MxNet", "NV-DLE"),
    (r"DeepLearningExamples", "NV-DLE"),
    (r"PaddlePaddle", "Paddle rpt"),
    (r"Lambda", "Lambda"),
    (r"jcjohnson", "jcjohnson"),
    (r"soumith", "soumith"),
    (r"Apache MXNet", "MXNet ex"),
    (r"Dell", "Dell blog"),
    (r"server-gear", "server-gear"),
)
FRAMEWORK_LABELS = (
    (r"tf_cnn_benchmarks", "tf_cnn"),
    (r"PyTorch", "PyT"),
    (r"TensorFlow", "TF"),
    (r"MXNet", "MXNet"),
    (r"Torch7", "Torch7"),
    (r"neon", "neon"),
    (r"NV-Caffe", "NVCaffe"),
    (r"Caffe", "Caffe"),
)


def short_source(source: str, framework: str) -> str:
    src = next((label for pat, label in SOURCE_LABELS if re.search(pat, source)), source[:12])
    fw = next((label for pat, label in FRAMEWORK_LABELS if re.search(pat, framework)), "")
    return f"{src}/{fw}" if fw and fw != src else src


def has(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.I) is not None


def infer_precision(framework: str, notes: str, gpu_name: str, ampere_fp32: str) -> tuple[str | None, str]:
    """Precision from the framework text (then the notes); (None, reason) if not usable."""
    spec = get_gpu(gpu_name)
    tensor_cores = spec.architecture in TENSOR_CORE_ARCHS
    amp_pat = r"mixed precision|\bamp\b|\bfp16\b|\bhalf\b"
    for text in (framework, notes):
        if has(r"\btf32\b", text):
            if not spec.supports("tf32"):
                return None, "TF32 stated on a pre-Ampere GPU"
            return "tf32", ""
        if has(amp_pat, text):
            if not tensor_cores:
                return None, "fp16 on a GPU without tensor cores (no fp16 model for it)"
            return "amp", ""
        if has(r"\bfp32\b", text):
            break
    # fp32 (stated, or nothing stated).
    if spec.supports("tf32"):
        if ampere_fp32 == "skip":
            return None, "'fp32' on Ampere+: TF32 may be on by default (use --ampere-fp32)"
        return ampere_fp32, ""
    return "fp32", ""


@dataclass
class Case:
    row: int
    source: str
    model_text: str
    gpu_text: str
    model: str
    seq: int | None
    gpu: str
    precision: str
    batch: int
    metric: str
    measured: float
    # the workload fields the run's framework text implies, as the multi-GPU validation sets
    # them (workload_for_text: fusion, XLA, fork sums, optimizer and its kernels, conv
    # algorithm, host waits); fields left at the scenario default are absent
    workload: dict[str, str | int]


def select_cases(df: pd.DataFrame, include_approx: bool, ampere_fp32: str) -> tuple[list[Case], pd.DataFrame]:
    """Map the one-GPU rows onto cases; returns (cases, skipped rows with a reason)."""
    total = pd.to_numeric(df["total_gpus"], errors="coerce")
    one = df[(total == 1) & df["metric"].isin(THROUGHPUT_METRICS + TIME_METRICS)]
    cases: list[Case] = []
    skipped: list[dict[str, Any]] = []

    def skip(idx: int, r: pd.Series, reason: str, detail: str) -> None:
        skipped.append({"row": idx, "reason": reason, "detail": detail, "metric": r["metric"]})

    for idx, r in one.iterrows():
        model_text, gpu_text = str(r["model"]).strip(), str(r["gpu"]).strip()
        framework, notes = str(r["framework"]), str(r["notes"])
        if model_text not in MODEL_MAP:
            skip(idx, r, "model not in the zoo", model_text)
            continue
        model, seq, confidence, _ = MODEL_MAP[model_text]
        if confidence == APPROX and not include_approx:
            skip(idx, r, "model variant differs from the zoo's (--include-approx)", model_text)
            continue
        if gpu_text not in GPU_MAP:
            skip(idx, r, "GPU not in the catalog", gpu_text)
            continue
        gpu = GPU_MAP[gpu_text]
        if gpu is None:
            skip(idx, r, "GPU variant ambiguous (form factor / memory not stated)", gpu_text)
            continue
        broken = superseded(str(r["source"]), gpu_text, framework)
        if broken:
            skip(idx, r, broken, gpu_text)
            continue
        if NON_CUDNN.search(framework):
            skip(idx, r, "non-cuDNN reference kernels (Caffe native)", framework)
            continue
        precision, why = infer_precision(framework, notes, gpu, ampere_fp32)
        if precision is None:
            skip(idx, r, why, f"{gpu}, {short_source(str(r['source']), framework)}")
            continue
        batch = pd.to_numeric(r["batch_per_gpu"], errors="coerce")
        if not (batch > 0) or batch != int(batch):
            skip(idx, r, "per-GPU batch not stated", str(r["batch_per_gpu"]))
            continue
        value = pd.to_numeric(r["value"], errors="coerce")
        if not (value > 0):
            skip(idx, r, "value not numeric", str(r["value"]))
            continue
        run_text = run_framework(str(r["source"]), framework, gpu_text)
        cases.append(Case(idx, short_source(str(r["source"]), framework), model_text, gpu_text,
                          model, seq, gpu, precision, int(batch), r["metric"], float(value),
                          workload_for_text(run_text, model, precision)))
    return cases, pd.DataFrame(skipped, columns=["row", "reason", "detail", "metric"])


class Predictor:
    """Simulates cases, caching one result per distinct scenario."""

    def __init__(self, overrides: list[str], family_overrides: dict[str, list[str]], fast: bool = False) -> None:
        self.overrides = overrides
        self.family_overrides = family_overrides
        self.fast = fast  # one GPU: throughput = batch / costs.total_s, as simulate() gives, without running it
        self._cache: dict[tuple, dict[str, float]] = {}

    def scenario(self, c: Case):
        workload: dict[str, Any] = {"model": c.model, "batch_per_gpu": c.batch, "precision": c.precision,
                                    **c.workload}
        if c.seq is not None:
            workload["sequence_length"] = c.seq
        data = {
            "name": f"1gpu-{c.model}-{c.gpu}-{c.precision}-b{c.batch}",
            "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": c.gpu},
            "workload": workload,
            "simulation": {"iterations": 1, "warmup_iterations": 0},
        }
        return load_scenario(data, [*self.overrides, *self.family_overrides.get(family_of(c.precision), [])])

    def predict(self, c: Case) -> dict[str, float]:
        key = (c.model, c.seq, c.gpu, c.precision, c.batch, tuple(sorted(c.workload.items())))
        if key not in self._cache:
            sc = self.scenario(c)
            costs = build(sc).costs
            throughput = (c.batch / costs.total_s) if self.fast else simulate(sc).throughput_samples_per_s
            w = sc.workload
            spec = get_gpu(sc.cluster.gpu)
            eff = w.compute_efficiency or default_compute_efficiency(w.precision, spec.architecture)
            flops = get_model(w.model, sequence_length=w.sequence_length).total_forward_flops * w.batch_per_gpu
            ref_fwd = flops / (spec.peak_flops(w.precision) * eff)
            fwd, bwd = float(costs.forward_s.sum()), float(costs.backward_s.sum())
            self._cache[key] = {
                "throughput": throughput,
                "fwd_time_ms": fwd * 1e3,
                "bwd_time_ms": bwd * 1e3,
                "fwd_bwd_time_ms": (fwd + bwd) * 1e3,
                "ref_throughput": w.batch_per_gpu / (3 * ref_fwd),
                "ref_fwd_time_ms": ref_fwd * 1e3,
                "ref_bwd_time_ms": 2 * ref_fwd * 1e3,
                "ref_fwd_bwd_time_ms": 3 * ref_fwd * 1e3,
                "precision": w.precision,
            }
        return self._cache[key]


def family_of(precision: str) -> str:
    return "tensor-core" if precision in TENSOR_CORE_PRECISIONS else "fp32"


def evaluate(cases: list[Case], overrides: list[str], family_overrides: dict[str, list[str]],
             fast: bool = False) -> pd.DataFrame:
    pred = Predictor(overrides, family_overrides, fast)
    rows = []
    for c in cases:
        p = pred.predict(c)
        key = "throughput" if c.metric in THROUGHPUT_METRICS else c.metric
        predicted, reference = p[key], p["ref_" + key]
        is_time = c.metric in TIME_METRICS
        rows.append({
            "row": c.row, "source": c.source, "model": c.model + (f"@{c.seq}" if c.seq else ""),
            "gpu": c.gpu, "precision": p["precision"], "batch": c.batch, "metric": c.metric,
            "measured": c.measured, "predicted": predicted,
            "rel_err": predicted / c.measured - 1,
            # speed ratio: > 1 means the simulator is faster than measured.
            "speed_ratio": (c.measured / predicted) if is_time else (predicted / c.measured),
            "ref_rel_err": reference / c.measured - 1,
            "family": family_of(p["precision"]),
            "generation": get_gpu(c.gpu).architecture,
        })
    return pd.DataFrame(rows)


def summarize(res: pd.DataFrame) -> pd.DataFrame:
    """n, median / p90 APE and median speed bias per group, simulator and reference."""
    groups = []
    prim = res[res["metric"].isin(PRIMARY_METRICS)]
    groups.append(("primary: all", prim))
    for fam in ("fp32", "tensor-core"):
        groups.append((f"primary: {fam}", prim[prim["family"] == fam]))
    groups.append(("primary: throughput rows", res[res["metric"].isin(THROUGHPUT_METRICS)]))
    groups.append(("primary: fwd+bwd time rows", res[res["metric"] == "fwd_bwd_time_ms"]))
    groups.append(("fwd_time_ms only", res[res["metric"] == "fwd_time_ms"]))
    groups.append(("bwd_time_ms only", res[res["metric"] == "bwd_time_ms"]))
    out = []
    for name, g in groups:
        if g.empty:
            out.append({"group": name, "n": 0})
            continue
        ape, ref = g["rel_err"].abs() * 100, g["ref_rel_err"].abs() * 100
        out.append({
            "group": name, "n": len(g),
            "median_ape_%": ape.median(), "p90_ape_%": ape.quantile(0.9),
            "speed_bias_%": (g["speed_ratio"].median() - 1) * 100,
            "ref_median_ape_%": ref.median(), "ref_p90_ape_%": ref.quantile(0.9),
        })
    return pd.DataFrame(out)


def print_by_source(res: pd.DataFrame) -> None:
    """Primary points per source and family: where the errors come from."""
    prim = res[res["metric"].isin(PRIMARY_METRICS)]
    if prim.empty:
        return
    by = prim.groupby(["source", "family"], sort=False).agg(
        n=("rel_err", "size"),
        median_ape_pct=("rel_err", lambda e: e.abs().median() * 100),
        speed_bias_pct=("speed_ratio", lambda r: (r.median() - 1) * 100),
    ).reset_index()
    by["median_ape_pct"] = by["median_ape_pct"].map(lambda v: f"{v:.1f}")
    by["speed_bias_pct"] = by["speed_bias_pct"].map(lambda v: f"{v:+.1f}")
    print("\nBy source (primary points; speed_bias > 0 = simulator too fast)")
    print(by.to_string(index=False))


def fmt_num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"


def print_table(res: pd.DataFrame) -> None:
    cols = ["source", "model", "gpu", "precision", "batch", "metric", "measured", "predicted", "rel_err"]
    view = res[cols].copy()
    view["measured"] = view["measured"].map(fmt_num)
    view["predicted"] = view["predicted"].map(fmt_num)
    view["rel_err"] = view["rel_err"].map(lambda v: f"{v * 100:+.1f}%")
    print(view.to_string(index=False))


def print_skipped(skipped: pd.DataFrame) -> None:
    print(f"\nSkipped {len(skipped)} one-GPU rows:")
    if skipped.empty:
        return
    for reason, g in skipped.groupby("reason", sort=False):
        details = g["detail"].value_counts()
        shown = "; ".join(f"{d} ({n})" for d, n in details.head(8).items())
        more = f"; ... {len(details) - 8} more" if len(details) > 8 else ""
        print(f"  {len(g):4d}  {reason}: {shown}{more}")


def print_summary(summary: pd.DataFrame, title: str, n_fixed: int = 2) -> None:
    print(f"\n{title}")
    view = summary.copy()
    for col in view.columns[n_fixed:]:
        view[col] = view[col].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    print(view.to_string(index=False))


def sweep(cases: list[Case], overrides: list[str], family_overrides: dict[str, list[str]],
          specs: list[str], best: int) -> None:
    """Evaluate every point of the grid given by ``specs`` and print the summaries."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not values:
            raise ClusterSimError(f"--sweep {spec!r}: expected KEY=V1,V2,...")
        axes.append((key.strip(), [v.strip() for v in values.split(",")]))
    keys = [k for k, _ in axes]
    rows = []
    for point in itertools.product(*(vals for _, vals in axes)):
        point_overrides = [*overrides, *(f"{k}={v}" for k, v in zip(keys, point))]
        s = summarize(evaluate(cases, point_overrides, family_overrides))
        s = s[s["group"].isin(["primary: all", "primary: fp32", "primary: tensor-core"])]
        rows.append(s.assign(**dict(zip(keys, point))))
    table = pd.concat(rows, ignore_index=True)
    cols = ["group", *keys, "n", "median_ape_%", "p90_ape_%", "speed_bias_%", "ref_median_ape_%", "ref_p90_ape_%"]
    table = table.loc[table["n"] > 0, cols]
    title = "Sweep of " + " x ".join(keys) + " (primary points; APE in %)"
    n_points = math.prod(len(v) for _, v in axes)
    if n_points <= 12:
        print_summary(table.sort_values("group", kind="stable"), title, n_fixed=len(keys) + 2)
        return
    print(f"\n{title}: {n_points} grid points")
    for group, g in table.groupby("group", sort=False):
        g = g[g["n"] > 0].sort_values(["median_ape_%", "p90_ape_%"]).head(best)
        print_summary(g, f"best {best} for {group}", n_fixed=len(keys) + 2)


# -- Cross-validation of the efficiency model's fitted parameters ---------------------
#: The fitted parameters and the grid searched for each. Per precision family: the
#: compute efficiency (CUDA cores / tensor cores), on CUDA cores the share of FMA issue
#: slots other instructions take on full-rate SM partitions (``compute.NON_FMA_ISSUE_SHARE``:
#: Volta, Turing and GA100 lose none), and, on tensor cores, the
#: convolutions' staging rate (which also gives TF32 convolutions their share: 4-byte
#: operands; ``kernel_efficiency.TF32_EFFICIENCY`` is no longer searched, since it now
#: moves only TF32 dense layers and the dev set has none); the others are shared. The
#: first value of each list is the one a fold falls back on when its training points
#: cannot tell values apart.
FIT_FAMILY_GRID: dict[str, dict[str, list[float]]] = {
    "fp32": {"compute_efficiency": [0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
             "compute.NON_FMA_ISSUE_SHARE": [0.0, 0.1, 0.2, 0.3]},
    "tensor-core": {"compute_efficiency": [0.4, 0.45, 0.5, 0.55, 0.6],
                    "kernel_efficiency.CONV_STAGING_FLOPS_PER_SM_CLOCK": [1024.0, 4096.0, 2048.0, 768.0, 512.0]},
}
#: memory_efficiency and layer_overhead_us are held at the scenario defaults (0.8, 20 us;
#: fitted with this grid when the shape-aware model came in): the workload fields are
#: shared with the multi-GPU dev set, whose ratchet they would move. host_dispatch_us is
#: searched; with MXNet's engine waits (workload.host_sync_layers) every leave-one-GPU-out
#: fold picks 50, the shipped default (README, "Small batches").
FIT_SHARED_GRID = {
    "workload.memory_efficiency": [0.8],
    "workload.layer_overhead_us": [20.0],
    "kernel_efficiency.OVERLAP_LOSS": [0.0, 0.5],
    "kernel_efficiency.WGRAD_FACTOR": [1.0, 1.25],
    "workload.host_dispatch_us": [0.0, 50.0, 80.0, 110.0],
}
CV_RESULTS = REPO_ROOT / "benchmarks" / "results" / "single_gpu_cv.json"
#: Modules whose constants the grid sets ("module.NAME" keys).
CONSTANT_MODULES = {"kernel_efficiency": kernel_efficiency, "compute": compute}


def _is_constant(key: str) -> bool:
    return key.split(".", 1)[0] in CONSTANT_MODULES


def _constant(key: str) -> Any:
    module, name = key.split(".", 1)
    return getattr(CONSTANT_MODULES[module], name)


def _set_constant(key: str, value: Any) -> None:
    module, name = key.split(".", 1)
    setattr(CONSTANT_MODULES[module], name, value)


def _apply_model_constants(point: dict[str, float]) -> list[str]:
    """Set the module constants of the grid point; return its scenario overrides. The
    engine's cache of compute costs (keyed by the workload) is dropped, since the
    constants change costs without changing the workload."""
    overrides = []
    for key, value in point.items():
        if _is_constant(key):
            _set_constant(key, value)
        elif key == "compute_efficiency":
            overrides.append(f"workload.compute_efficiency={value}")
        else:
            overrides.append(f"{key}={value}")
    forget_shared_clusters()
    return overrides


def _family_points(family: str) -> list[tuple[float, ...]]:
    return list(itertools.product(*FIT_FAMILY_GRID[family].values()))


def grid_predictions(cases: list[Case], overrides: list[str]) -> dict[tuple, pd.DataFrame]:
    """Primary-point predictions at every grid point, per family:
    {(shared point, family, family point): rows of that family}."""
    primary = [c for c in cases if c.metric in PRIMARY_METRICS]
    keys = [*FIT_SHARED_GRID, *(k for grid in FIT_FAMILY_GRID.values() for k in grid)]
    saved = {k: _constant(k) for k in keys if _is_constant(k)}
    out: dict[tuple, pd.DataFrame] = {}
    try:
        for shared in itertools.product(*FIT_SHARED_GRID.values()):
            for family, grid in FIT_FAMILY_GRID.items():
                fam_cases = [c for c in primary if family_of(c.precision) == family]
                for point in _family_points(family):
                    point_overrides = [*overrides, *_apply_model_constants(
                        {**dict(zip(FIT_SHARED_GRID, shared)), **dict(zip(grid, point))})]
                    out[(shared, family, point)] = evaluate(fam_cases, point_overrides, {}, fast=True)
    finally:
        _apply_model_constants(saved)
    return out


def _score(res: pd.DataFrame) -> tuple[float, float]:
    ape = res["rel_err"].abs()
    return (float(ape.median()), float(ape.quantile(0.9)))


def cross_validate(grid: dict[tuple, pd.DataFrame], by: str) -> dict[str, Any]:
    """Leave one ``by`` group (gpu, generation or source) out: fit every parameter on
    the rest (lowest median APE, then p90; ties go to the earlier grid point),
    predict the group left out."""
    shared_points = list(dict.fromkeys(k[0] for k in grid))
    combos = [(sh, p32, ptc) for sh in shared_points for p32 in _family_points("fp32")
              for ptc in _family_points("tensor-core")]
    full = {c: pd.concat([grid[(c[0], "fp32", c[1])], grid[(c[0], "tensor-core", c[2])]], ignore_index=True)
            for c in combos}
    groups = sorted(set(next(iter(full.values()))[by]))
    held, folds = [], []
    for g in groups:
        best = min(combos, key=lambda c: _score(full[c][full[c][by] != g]))
        part = full[best][full[best][by] == g]
        held.append(part)
        folds.append({by: g, "n": len(part), "median_ape_%": 100 * _score(part)[0],
                      "params": _named(best)})
    in_sample = min(combos, key=lambda c: _score(full[c]))
    return {"held_out": pd.concat(held, ignore_index=True), "folds": folds,
            "in_sample": full[in_sample], "in_sample_params": _named(in_sample)}


def _shipped_combo() -> tuple:
    """The grid point of the shipped defaults (scenario defaults and module constants)."""
    def value(key: str) -> float:
        if _is_constant(key):
            return float(_constant(key))
        return float(WorkloadSpec.model_fields[key.split(".", 1)[1]].default)

    efficiency = {"fp32": default_compute_efficiency("fp32", "Volta"),
                  "tensor-core": default_compute_efficiency("amp", "Volta")}
    points = {family: tuple(efficiency[family] if key == "compute_efficiency" else value(key) for key in grid)
              for family, grid in FIT_FAMILY_GRID.items()}
    return tuple(value(k) for k in FIT_SHARED_GRID), points["fp32"], points["tensor-core"]


def shipped_results(grid: dict[tuple, pd.DataFrame]) -> pd.DataFrame | None:
    """The grid's rows at the shipped defaults, or None when the grid does not hold them."""
    shared, p32, ptc = _shipped_combo()
    parts = [grid.get((shared, "fp32", p32)), grid.get((shared, "tensor-core", ptc))]
    return None if any(p is None for p in parts) else pd.concat(parts, ignore_index=True)


def _named(combo: tuple) -> dict[str, float]:
    shared, p32, ptc = combo
    named = dict(zip(FIT_SHARED_GRID, shared))
    for family, point in (("fp32", p32), ("tensor-core", ptc)):
        for key, value in zip(FIT_FAMILY_GRID[family], point):
            named[f"{key} {family}" if key == "compute_efficiency" else key] = value
    return named


def figures(res: pd.DataFrame) -> dict[str, Any]:
    ape = res["rel_err"].abs() * 100
    ref = res["ref_rel_err"].abs() * 100
    return {
        "n": len(res), "median_ape_%": round(float(ape.median()), 1), "p90_ape_%": round(float(ape.quantile(0.9)), 1),
        "speed_bias_%": round(float((res["speed_ratio"].median() - 1) * 100), 1),
        "flops_only_median_ape_%": round(float(ref.median()), 1), "flops_only_p90_ape_%": round(float(ref.quantile(0.9)), 1),
        "by_generation_median_ape_%": {g: round(float(v.abs().median() * 100), 1)
                                       for g, v in res.groupby("generation")["rel_err"]},
        "by_gpu_median_ape_%": {g: round(float(v.abs().median() * 100), 1) for g, v in res.groupby("gpu")["rel_err"]},
    }


def run_cv(cases: list[Case], overrides: list[str], record: bool) -> None:
    t0 = time.perf_counter()
    grid = grid_predictions(cases, overrides)
    n_points = len(list(itertools.product(*FIT_SHARED_GRID.values()))) * sum(
        len(_family_points(f)) for f in FIT_FAMILY_GRID)
    print(f"\nGrid: {n_points} evaluations ({time.perf_counter() - t0:.0f} s); fitted: "
          + ", ".join([*FIT_SHARED_GRID, "compute_efficiency per family", "CONV_STAGING_FLOPS_PER_SM_CLOCK"]))
    report: dict[str, Any] = {"grid": {**FIT_SHARED_GRID, **{
        (f"{k} {family}" if k == "compute_efficiency" else k): v
        for family, grid in FIT_FAMILY_GRID.items() for k, v in grid.items()}}}
    for by in ("gpu", "generation", "source"):
        cv = cross_validate(grid, by)
        fig = figures(cv["held_out"])
        report[f"leave_one_{by}_out"] = {**fig, "folds": cv["folds"]}
        if by == "gpu":
            report["in_sample"] = {**figures(cv["in_sample"]), "params": cv["in_sample_params"]}
        print(f"\nLeave one {by} out ({fig['n']} primary points): median APE {fig['median_ape_%']}%, "
              f"p90 {fig['p90_ape_%']}%, speed bias {fig['speed_bias_%']:+}% "
              f"(FLOPs-only reference: {fig['flops_only_median_ape_%']}% / {fig['flops_only_p90_ape_%']}%)")
        print("  by generation (median APE %): " + ", ".join(f"{g} {v}" for g, v in
                                                               fig["by_generation_median_ape_%"].items()))
        if by in ("gpu", "source"):
            for fold in cv["folds"]:
                params = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in fold["params"].items())
                print(f"  {fold[by]:18s} n={fold['n']:2d} median {fold['median_ape_%']:5.1f}%   fitted on the rest: {params}")
    shipped = shipped_results(grid)
    if shipped is not None:
        report["shipped_defaults"] = figures(shipped)
        fig = report["shipped_defaults"]
        print(f"\nShipped defaults (in-sample): median {fig['median_ape_%']}%, p90 {fig['p90_ape_%']}%; by generation "
              + ", ".join(f"{g} {v}" for g, v in fig["by_generation_median_ape_%"].items()))
    ins = report["in_sample"]
    print(f"\nIn-sample (all points, best grid point): median {ins['median_ape_%']}%, p90 {ins['p90_ape_%']}%; "
          + ", ".join(f"{k.split('.')[-1]}={v}" for k, v in ins["params"].items()))
    if CV_RESULTS.exists():
        recorded = json.loads(CV_RESULTS.read_text())
        for key, label in (("before", "Before (one efficiency per family, implicit GEMM, {model})"),
                           ("previous", "Previous ({model})"),
                           ("before_new_gpus", "Same model, fewer GPUs ({model})"),
                           ("before_fusion", "Before workload.kernel_fusion ({model})"),
                           ("before_conv_staging", "Before the convolutions' staging cost ({model})"),
                           ("before_fork_gradients", "Before the fork-gradient sums and XLA's ReLU epilogues ({model})"),
                           ("before_optimizer_kernels", "Before workload.optimizer_kernels ({model})"),
                           ("before_mxnet_perf", "The dev set before MXNet's perf.md rows ({model})"),
                           *((key, f"Earlier model, {step} ({{model}})") for key, step in MODEL_STEPS)):
            earlier = recorded.get(key)
            if not earlier:
                continue
            report[key] = earlier
            e = earlier["leave_one_gpu_out"]
            print(f"{label.format(model=earlier['model'])}: leave one GPU out median {e['median_ape_%']}%, "
                  f"p90 {e['p90_ape_%']}%; by generation "
                  + ", ".join(f"{g} {v}" for g, v in e["by_generation_median_ape_%"].items()))
    if record:
        CV_RESULTS.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        print(f"recorded {CV_RESULTS.relative_to(REPO_ROOT)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="published cases CSV")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="scenario override applied to every case (repeatable)")
    ap.add_argument("--set-fp32", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to the fp32 (CUDA-core) cases only (repeatable)")
    ap.add_argument("--set-tc", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to the tensor-core (tf32/fp16/bf16/amp) cases only (repeatable)")
    ap.add_argument("--no-extra", action="store_true",
                    help="read only --csv, not the rows kept in benchmarks/data (EXTRA_CSVS)")
    ap.add_argument("--include-approx", action="store_true",
                    help="also use rows whose model maps only approximately to the zoo")
    ap.add_argument("--ampere-fp32", choices=("skip", "fp32", "tf32"), default="skip",
                    help="how to read 'fp32' rows on Ampere+ GPUs (default: leave them out)")
    ap.add_argument("--family", choices=("fp32", "tensor-core"), default=None,
                    help="evaluate only this precision family")
    ap.add_argument("--no-table", action="store_true", help="print only skips and summary")
    ap.add_argument("--sweep", metavar="KEY=V1,V2,...", action="append", default=[],
                    help="evaluate once per value (added to --set); repeat for a grid")
    ap.add_argument("--cv", action="store_true",
                    help="cross-validate the fitted efficiency parameters (leave one GPU / generation / source "
                    "out over the grid FIT_*_GRID) and print the held-out figures")
    ap.add_argument("--record", action="store_true", help="with --cv: write benchmarks/results/single_gpu_cv.json")
    ap.add_argument("--best", type=int, default=5, metavar="N",
                    help="with a grid of more than 12 points: show the N best per family (default 5)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    csv = args.csv.resolve()
    try:
        df = read_rows(csv)
    except OSError as exc:
        print(f"error: --csv {csv}: {exc}", file=sys.stderr)
        return 2
    if not args.no_extra:
        # appended after the shared rows, so their row numbers stay the file's
        df = pd.concat([df, *map(read_rows, EXTRA_CSVS)], ignore_index=True)
    cases, skipped = select_cases(df, args.include_approx, args.ampere_fp32)
    if args.family:
        cases = [c for c in cases if (c.precision == "fp32") == (args.family == "fp32")]
    n_one = len(cases) + len(skipped)
    extra = "" if args.no_extra else f" (with {', '.join(e.name for e in EXTRA_CSVS)})"
    print(f"{csv}{extra}: {n_one} one-GPU throughput/timing rows, {len(cases)} used, {len(skipped)} skipped"
          + (f" (family filter: {args.family})" if args.family else ""))
    family_overrides = {"fp32": args.set_fp32, "tensor-core": args.set_tc}
    for label, items in (("overrides", args.overrides), ("fp32-only overrides", args.set_fp32),
                         ("tensor-core-only overrides", args.set_tc)):
        if items:
            print(f"{label}: " + " ".join(items))

    try:
        if args.cv:
            run_cv(cases, args.overrides, args.record)
        elif args.sweep:
            print_skipped(skipped)
            sweep(cases, args.overrides, family_overrides, args.sweep, args.best)
        else:
            res = evaluate(cases, args.overrides, family_overrides)
            if not args.no_table:
                print()
                print_table(res)
            print_skipped(skipped)
            print_by_source(res)
            print_summary(summarize(res), "Summary (APE = |predicted/measured - 1| in %; speed_bias: median "
                          "predicted/measured speed - 1, > 0 = simulator too fast; ref = FLOPs-only predictor)")
    except ClusterSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
