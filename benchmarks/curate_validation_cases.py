"""Curate ``scenarios/validation/published_cases.csv`` from the published raw points.

Reads ``../shared/measured/published_cases.csv`` and writes the validation set in the
measured-runs format (``simulator/validation/cases.py``). Measured values are copied
unchanged; the only conversions are unit changes stated in the row's notes (nccl-tests
bus bandwidth -> time, microseconds -> seconds). Model and GPU names go through the
mapping tables of ``accuracy_single_gpu.py`` (imported, not duplicated). Every
multi-GPU throughput row carries the source's own one-GPU throughput of the same model,
GPU, per-GPU batch and framework as ``baseline_throughput_samples_per_s``.

Selection (what is in, and why):
- Lambda tf_cnn_benchmarks, RTX 2080 Ti PCIe servers, 2/4/8 GPUs, fp32 and fp16
  (PCIe allreduce, one node); A100 PCIe fp16 (fp32 rows are TF32-ambiguous).
- NVIDIA DLE MXNet ResNet-50 on DGX-1 (NVLink) and DGX-2 (NVSwitch), 2-16 GPUs.
- NVIDIA DLE PyTorch BERT-large: DGX-1 single node and multi-node pretraining on
  DGX-1 with 4x EDR (network from the DGX-1 spec, not the source: flagged in notes).
- PaddlePaddle report: MXNet ResNet-50 on 8x V100 SXM2 (DGX-1 style).
- Dell P100 blog: NV-Caffe GoogLeNet on a 4-GPU PCIe server (one node) and MXNet
  GoogLeNet with parameter servers over 1-4 nodes (InfiniBand type unknown; per-GPU
  batch read as MXNet's per-machine --batch-size 144 split over its GPUs).
- InfoWorld/Vogels MXNet Inception-v3 on 128 K80 (PS, 20 Gb/s; assumptions in notes).
- Collectives: nccl-tests #44 (2x RTX 2080 Ti with NVLink bridge; a scenario file
  describes the bridge), stas00 8x H200 nccl-tests, MXNet bandwidth tool on an 8-GPU
  PCIe server with two switch groups (device kvstore = reduce + broadcast, simulated
  as an allreduce).

    python benchmarks/curate_validation_cases.py [--csv RAW] [-o OUT]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_single_gpu import GPU_MAP, MODEL_MAP, infer_precision  # noqa: E402

from simulator.validation.cases import COLUMNS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
RAW = REPO_ROOT / ".." / "shared" / "measured" / "published_cases.csv"
OUT = REPO_ROOT / "scenarios" / "validation" / "published_cases.csv"

# GPUs of the multi-GPU rows the single-GPU table does not list (same card, other text).
EXTRA_GPU_MAP = {
    "V100-SXM2-32GB": "V100-SXM2-32GB",
    "P100-PCIe (Dell PowerEdge C4130)": "P100-PCIe-16GB",  # 16 GB C4130 config assumed (noted)
}
SIZE = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def gpu_name(text: str) -> str | None:
    return GPU_MAP.get(text) or EXTRA_GPU_MAP.get(text)


def num(x: str) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def short(source: str) -> str:
    for pat, label in (
        (r"Lambda", "Lambda"), (r"DeepLearningExamples, MxNet", "NVIDIA-DLE-MXNet"),
        (r"PyTorch/LanguageModeling/BERT", "NVIDIA-DLE-PyTorch-BERT"), (r"PaddlePaddle", "Paddle-report"),
        (r"Dell EMC HPC", "Dell-P100-blog"), (r"InfoWorld", "InfoWorld-MXNet"),
        (r"nccl-tests issue", "nccl-tests-#44"), (r"8x H200", "stas00-H200"),
        (r"MXNet tools/bandwidth", "MXNet-bandwidth-tool"),
    ):
        if re.search(pat, source):
            return label
    return source[:20]


def baseline(df: pd.DataFrame, r: pd.Series) -> float | None:
    """The same source's one-GPU throughput for the row's model, GPU, batch, framework."""
    one = df[(df["source"] == r["source"]) & (df["model"] == r["model"]) & (df["gpu"] == r["gpu"])
             & (df["framework"] == r["framework"]) & (df["batch_per_gpu"] == r["batch_per_gpu"])
             & (df["metric"] == r["metric"]) & (df["total_gpus"] == "1")]
    if len(one) != 1:
        return None
    return num(one.iloc[0]["value"])


def row(**kw) -> dict[str, str]:
    out = dict.fromkeys(COLUMNS, "")
    for k, v in kw.items():
        out[k] = "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
    return out


def training_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    tput = df["metric"].isin(["images_per_sec", "sequences_per_sec"])
    multi = pd.to_numeric(df["total_gpus"], errors="coerce") > 1
    sel = df[tput & multi]
    for idx, r in sel.iterrows():
        src = short(r["source"])
        gpu = gpu_name(r["gpu"].strip())
        model = MODEL_MAP.get(r["model"].strip())
        notes = [f"raw row {idx}: {r['notes']}"]
        if src == "Lambda":
            if r["gpu"] not in ("RTX 2080Ti", "A100 40GB PCIe") or r["intra_node"] != "PCIe":
                continue
            intra, network, gbps, strategy = "pcie", None, None, "ring_allreduce"
        elif src in ("NVIDIA-DLE-MXNet", "Paddle-report"):
            if "V100" not in r["gpu"] or r["intra_node"].startswith("unspecified"):
                continue
            intra = "nvswitch" if "NVSwitch" in r["intra_node"] else "nvlink"
            network, gbps, strategy = None, None, "ring_allreduce"
        elif src == "NVIDIA-DLE-PyTorch-BERT":
            if "DGX-1" not in r["gpu"] or "seq128" not in r["model"]:
                continue
            intra, strategy = "nvlink", "ring_allreduce"
            network, gbps = (None, None)
            if int(r["nodes"]) > 1:
                network, gbps = "infiniband", 400.0
                notes.append("network 4x100 Gb/s EDR from the DGX-1 spec, not stated by the source; "
                             "gradient accumulation not stated")
        elif src == "Dell-P100-blog" and r["model"].startswith("GoogLeNet"):
            intra = "pcie"
            model = ("googlenet", None, "approx", "")
            notes.append("zoo googlenet (torchvision, batch norm) stands in for Caffe bvlc_googlenet; "
                         "P100 PCIe 16 GB assumed")
            if "NV-Caffe" in r["framework"]:
                network, gbps, strategy = None, None, "ring_allreduce"
                notes.append("NV-Caffe multi-GPU (P2P reduce/broadcast) simulated as ring allreduce")
            else:
                continue  # the PS rows are built below (their batch needs interpreting)
        else:
            continue
        if model is None or gpu is None:
            continue
        zoo_model, seq, _, _ = model
        precision, _why = infer_precision(r["framework"], r["notes"], gpu, "skip")
        if precision is None:
            continue
        batch = num(r["batch_per_gpu"])
        if not batch:
            continue
        base = baseline(df, r)
        if base is None:
            continue
        if seq not in (None, 128):
            continue
        rows.append(row(
            case_id=f"{src}-{zoo_model}-{gpu}-{precision}-b{int(batch)}-{r['nodes']}x{r['gpus_per_node']}gpu",
            source=src, model=zoo_model, gpu=gpu, nodes=int(r["nodes"]), gpus_per_node=int(r["gpus_per_node"]),
            intra_node=intra, network_gbps=gbps, network=network, strategy=strategy,
            batch_per_gpu=int(batch), precision=precision, metric="throughput_samples_per_s",
            value=float(r["value"]), baseline_throughput_samples_per_s=base, framework=r["framework"],
            notes="; ".join(notes),
        ))
    return rows


def ps_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    dell = df[df["source"].str.contains("Dell EMC HPC") & df["sync"].str.startswith("ps (MXNet kvstore dist")]
    for idx, r in dell.iterrows():
        n, g = int(r["nodes"]), int(r["gpus_per_node"])
        if n * g == 1:
            continue
        rows.append(row(
            case_id=f"Dell-P100-blog-googlenet-mxnet-ps-{n}x{g}", source="Dell-P100-blog", model="googlenet",
            gpu="P100-PCIe-16GB", nodes=n, gpus_per_node=g, intra_node="pcie", network="infiniband",
            strategy="parameter_server", ps_placement="colocated", batch_per_gpu=144 // g, precision="fp32",
            metric="throughput_samples_per_s", value=float(r["value"]), framework=r["framework"],
            notes=(f"raw row {idx}: {r['notes']}; read as MXNet's per-machine --batch-size 144 split over "
                   f"{g} GPUs; no one-GPU baseline at that batch (roofline compute); InfiniBand type not "
                   "stated (typical figure); zoo googlenet stands in for bvlc_googlenet; one colocated server "
                   "per node (MXNet default)"),
        ))
    info = df[df["source"].str.contains("InfoWorld")]
    for idx, r in info.iterrows():
        rows.append(row(
            case_id="InfoWorld-MXNet-inception_v3-K80-ps-8x16", source="InfoWorld-MXNet", model="inception_v3",
            gpu="K80", nodes=8, gpus_per_node=16, intra_node="pcie", network="ethernet", network_gbps=20.0,
            strategy="parameter_server", ps_placement="colocated", batch_per_gpu=32, precision="fp32",
            metric="speedup", value=float(r["value"]), framework=r["framework"],
            notes=(f"raw row {idx}: {r['notes']}; p2.16xlarge (16 K80 dies, 20 Gb/s) and batch 32/GPU as in "
                   "Paleo's replication, not stated by the article; one colocated server per node"),
        ))
    return rows


def collective_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for idx, r in df[df["source"].str.contains("nccl-tests issue")].iterrows():
        m = re.search(r"(\d+) bytes", r["model"])
        t = re.search(r"out-of-place; time ([\d.]+) us", r["notes"])
        if not m or not t:
            continue
        nbytes = int(m.group(1))
        rows.append(row(
            case_id=f"nccl-tests-44-allreduce-{nbytes}B", source="nccl-tests-#44", gpu="RTX-2080Ti", nodes=1,
            gpus_per_node=2, intra_node="nvlink", strategy="ring_allreduce", metric="collective_time_s",
            value=float(t.group(1)) * 1e-6, scenario="rtx2080ti_nvlink_bridge_2gpu.yaml", framework=r["framework"],
            collective="allreduce", message_bytes=nbytes,
            notes=f"raw row {idx}: out-of-place time from the notes (us -> s); {r['notes']}",
        ))
    for idx, r in df[df["source"].str.contains("8x H200")].iterrows():
        m = re.search(r"payload (\d+)(KiB|MiB|GiB)", r["model"])
        if not m or r["metric"] != "busbw_GBps":
            continue
        nbytes = int(m.group(1)) * SIZE[m.group(2)]
        n = 8
        t = nbytes * 2 * (n - 1) / n / (float(r["value"]) * 1e9)
        rows.append(row(
            case_id=f"stas00-H200-allreduce-{m.group(1)}{m.group(2)}", source="stas00-H200", gpu="H200-SXM-141GB",
            nodes=1, gpus_per_node=8, intra_node="nvswitch", strategy="auto", metric="collective_time_s",
            value=t, framework=r["framework"], collective="allreduce", message_bytes=nbytes,
            notes=f"raw row {idx}: time = bytes x 2(n-1)/n / busbw (nccl-tests definition), busbw "
                  f"{r['value']} GB/s; {r['notes']}",
        ))
    for idx, r in df[df["source"].str.contains("MXNet tools/bandwidth")].iterrows():
        if "kvstore=device" not in r["sync"]:
            continue
        m = re.search(r"\(([\d.]+) MB", r["model"])
        nbytes = float(m.group(1)) * 1e6
        g = int(r["gpus_per_node"])
        model = "resnet200" if "ResNet-200" in r["model"] else "inception_v3"
        rows.append(row(
            case_id=f"MXNet-bandwidth-{model}-device-{g}gpu", source="MXNet-bandwidth-tool", gpu="V100-PCIe-16GB",
            nodes=1, gpus_per_node=g, intra_node="pcie", strategy="ring_allreduce", metric="collective_time_s",
            value=float(r["value"]), framework=r["framework"], collective="allreduce", message_bytes=nbytes,
            scenario=f"mxnet_bandwidth_pcie_{g}gpu.yaml",
            notes=(f"raw row {idx}: kvstore=device reduce+broadcast of all gradients simulated as one ring "
                   f"allreduce; GPU model unspecified (PCIe gen3 card assumed); {r['notes']}"),
        ))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=RAW)
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    df = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    rows = training_rows(df) + ps_rows(df) + collective_rows(df)
    seen: set[str] = set()
    for r in rows:  # two measured points of one configuration: tell them apart by raw row
        if r["case_id"] in seen:
            r["case_id"] += "-" + r["notes"].split(":")[0].replace("raw row ", "r")
        seen.add(r["case_id"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    by = pd.Series([r["source"] for r in rows]).value_counts()
    print(f"wrote {len(rows)} cases to {args.output}")
    print(by.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
