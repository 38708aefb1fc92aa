"""Curate ``scenarios/validation/published_cases.csv`` from the published raw points.

Reads ``../shared/measured/published_cases.csv`` and writes the validation set in the
measured-runs format (``simulator/validation/cases.py``). Measured values are copied
unchanged; the only conversions are unit changes stated in the row's notes (nccl-tests
bus bandwidth -> time, microseconds -> seconds). Model and GPU names go through the
mapping tables of ``accuracy_single_gpu.py`` (imported, not duplicated). Every
multi-GPU throughput row carries the source's own one-GPU throughput of the same model,
GPU, per-GPU batch and framework as ``baseline_throughput_samples_per_s``.

Selection (what is in, and why):
- Lambda tf_cnn_benchmarks, RTX 2080 Ti and Quadro RTX 8000 PCIe servers, 2/4/8 GPUs,
  fp32 and fp16 (PCIe allreduce, one node), and two of either card joined by an NVLink
  bridge (2 GPUs; the one-GPU run is the unbridged card's; the 2080 Ti pairs are
  simulated without the bridge, which their runs most likely could not use: see their
  notes); A100 PCIe and RTX A6000 (2/4/8 GPUs), RTX 3090 (2/3) and RTX 3080 (2) fp16
  (Ampere fp32 rows are TF32-ambiguous). Every one of these cards' figures is an XLA
  run (``LAMBDA_XLA_LOGS``; their framework text and notes say so); the Xeon Gold 6230
  and EPYC 7502 servers' rows get scenario files with the wiring their logs show.
- NVIDIA DLE MXNet ResNet-50 on DGX-1 (NVLink) and DGX-2 (NVSwitch), 2-16 GPUs.
- NVIDIA DLE PyTorch BERT-large: DGX-1 single node and multi-node pretraining on
  DGX-1 with 4x EDR (network from the DGX-1 spec, not the source: flagged in notes).
- NVIDIA DLE TensorFlow BERT-large SQuAD fine-tuning (README of 12c7bc2): DGX-1 16G and
  32G, DGX-2, 4-16 GPUs, fp32 and TF-AMP; Horovod with XLA at sequence 384, as the same
  commit's scripts run it (``TF_BERT_NOTE``).
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
from accuracy_single_gpu import GPU_MAP, LAMBDA_XLA_LOGS, MODEL_MAP, infer_precision, run_framework  # noqa: E402

from simulator.validation.cases import DATA_PARALLEL_COLUMNS as COLUMNS  # noqa: E402
from simulator.validation.run import preset_for_text, workload_for_text  # noqa: E402

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
        (r"TensorFlow/LanguageModeling/BERT", "NVIDIA-DLE-TF-BERT"),
        (r"Dell EMC HPC", "Dell-P100-blog"), (r"InfoWorld", "InfoWorld-MXNet"),
        (r"nccl-tests issue", "nccl-tests-#44"), (r"8x H200", "stas00-H200"),
        (r"MXNet tools/bandwidth", "MXNet-bandwidth-tool"),
        (r"PyTorch/Classification/ConvNets", "NVIDIA-DLE-PyTorch-RN50"),
        (r"TensorFlow/Classification/ConvNets", "NVIDIA-DLE-TF-RN50"),
    ):
        if re.search(pat, source):
            return label
    return source[:20]


# Multi-GPU rows whose one-GPU run is listed under another name: the same card (one GPU
# has no bridge to use, so the source lists no bridged one-GPU row).
ONE_GPU_ROW_OF = {"RTX 2080Ti NVLink": "RTX 2080Ti", "RTX 8000 NVLink": "RTX 8000"}
# Lambda's PCIe servers whose card the catalog has (the GPU as the source writes it).
PCIE_LAMBDA_GPUS = ("RTX 2080Ti", "A100 40GB PCIe", "RTX 3090", "RTX 3080", "RTX 8000", "RTX A6000")
# The Xeon Gold 6230 servers' GPUs in those logs sit at PCI buses 1a/1b, 3d/3e, 88/89
# and b1/b2: pairs behind four PCIe switches, two per socket (buses below 0x80 are the
# first socket's). An n-GPU run uses GPUs 0..n-1. Their runs load CUDA 10.0: Google's
# TensorFlow 1.15 build (its workspace of late 2019 pins NCCL 2.4.7), and NCCL 2.4 copies
# peer to peer only between GPUs below one root bus (p2pLevel PATH_NODE,
# src/transport/p2p.cc), here a switch's pair: the collective library's default (PXB).
GOLD_6230_CARDS = ("RTX 2080Ti", "RTX 8000")
# The EPYC 7502 servers' GPUs sit at buses 01, 25, 41, 61 (first socket) and 81, a1, c1,
# e1: each on its own root port, four per socket. Their runs load CUDA 11.0 (the logs'
# libcudart.so.11.0), so TensorFlow 1.15 was NVIDIA's build, whose NCCL (2.7/2.8) lets
# GPUs on AMD CPUs copy peer to peer at any distance (p2pLevel PATH_SYS: src/graph/
# paths.cc of those releases; 2.23 stopped it for more than two GPUs).
EPYC_7502_CARDS = ("A100 40GB PCIe", "RTX A6000")


def baseline(df: pd.DataFrame, r: pd.Series) -> float | None:
    """The same source's one-GPU throughput for the row's model, GPU, batch, framework."""
    card = ONE_GPU_ROW_OF.get(r["gpu"], r["gpu"])
    one = df[(df["source"] == r["source"]) & (df["model"] == r["model"]) & (df["gpu"] == card)
             & (df["framework"] == r["framework"]) & (df["batch_per_gpu"] == r["batch_per_gpu"])
             & (df["metric"] == r["metric"]) & (df["total_gpus"] == "1")]
    if len(one) != 1:
        return None
    return num(one.iloc[0]["value"])


# What NVIDIA's TensorFlow BERT README table ran (DeepLearningExamples 12c7bc2, May 2019),
# read in the same commit's scripts: run_squad.sh passes --max_seq_length=384, turns XLA
# on by default (run_squad.py --use_xla: global_jit_level ON_1, auto-clustering) and runs
# every GPU count under Horovod (mpirun); optimization.py wraps the optimizer in
# hvd.DistributedOptimizer(compression=Compression.none), so the fp32 variables'
# gradients are all-reduced in fp32 with TF-AMP too.
TF_BERT_NOTE = ("scripts of the README's commit (12c7bc2): run_squad.sh --max_seq_length=384, XLA on by default "
                "(run_squad.py --use_xla: global_jit_level ON_1), Horovod at every GPU count; optimization.py "
                "hvd.DistributedOptimizer(compression=Compression.none): fp32 gradients on the wire with TF-AMP too")

# The multi-node rows of NVIDIA's PyTorch BERT table accumulated gradients: the same
# commit's configurations.yml names them DGX1_<nodes>x8x<batch>x<steps> (GRADIENT_STEPS 128,
# 32, 256, 64 at 4 / 16 nodes, sequence 128 / 512), and run_pretraining.sh all-reduces after
# accumulation in fp16 by default. The simulator has no accumulation field yet: simulated as
# one all-reduce per micro-batch (docs/accuracy-journal.md).
PYTORCH_BERT_ACCUMULATION = (
    "gradient accumulation: configurations.yml of the README's commit (23a6382) runs these as "
    "DGX1_4x8x16x128 / DGX1_16x8x16x32 / DGX1_4x8x4x256 / DGX1_16x8x4x64 (GRADIENT_STEPS 128 / 32 / 256 / 64; "
    "run_pretraining.sh all-reduces after accumulation in fp16); simulated without accumulation (no such field yet)")

SYSTEMS = OUT.parent / "training_systems"
LAYOUT_OF = {"pcie": "pcie_tree", "nvlink": "dgx1", "nvswitch": "nvswitch"}
LATENCY_US = {"ethernet": 20.0, "infiniband": 1.1}
#: What this run wrote to each scenario file: rows whose configurations differ must not
#: share one (NVIDIA's TensorFlow BERT table ran one card in a DGX-1 and a DGX-2).
_WRITTEN: dict[Path, str] = {}


def write_scenario(name: str, *, nodes: int, gpus_per_node: int, gpu: str, layout: str, network: str | None,
                   gbps: float | None, model: str, batch: int, precision: str, seq: int | None = None,
                   framework: str | None = None, pcie: dict | None = None, p2p_level: str | None = None,
                   text_fields: dict[str, str] | None = None) -> str:
    """Write a scenario file for a row the CSV columns cannot describe; its path relative to the CSV.
    ``framework``: the ``training.framework`` preset (a scenario row gets none from its text);
    ``pcie``: PCIe tree fields (switches, sockets) of a server whose wiring is known;
    ``p2p_level``: the collective library's NCCL_P2P_LEVEL where the run's NCCL had another default;
    ``text_fields``: the ``workload`` fields the row's framework text implies (``workload_for_text``, as a row
    without a file gets them)."""
    import yaml

    server: dict = {"layout": "nvswitch" if layout == "bridge2" else layout, **(pcie or {})}
    if layout == "bridge2":  # a 2-card NVLink bridge: 2 NVLink 2 links, 50 GB/s each way
        server["nvlink_bandwidth_gbytes_s"] = 50
    nics = {"dgx1": 4, "nvswitch": gpus_per_node}.get(server["layout"], 1)
    cluster: dict = {"nodes": nodes, "gpus_per_node": gpus_per_node, "gpu": gpu, "server": server}
    if nodes > 1:
        cluster["nic"] = {"link": None, "bandwidth_gbps": gbps / nics, "latency_us": LATENCY_US[network]}
    workload: dict = {"model": model, "batch_per_gpu": batch, "precision": precision}
    if seq:
        workload["sequence_length"] = seq
    workload.update(text_fields or {})
    training: dict = {"strategy": "ring_allreduce"}
    if framework:
        training["framework"] = framework
    if p2p_level:
        training["collectives"] = {"p2p_level": p2p_level}
    data = {"name": name, "cluster": cluster, "workload": workload, "training": training}
    SYSTEMS.mkdir(parents=True, exist_ok=True)
    path = SYSTEMS / f"{name}.yaml"
    text = "# Generated by benchmarks/curate_validation_cases.py; see the case's notes.\n" + yaml.safe_dump(
        data, sort_keys=False)
    if _WRITTEN.setdefault(path, text) != text:
        raise ValueError(f"{path.name}: two rows of different configurations would share this scenario file")
    path.write_text(text, encoding="utf-8")
    return f"training_systems/{path.name}"


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
        scenario_layout = None  # set when the row needs a scenario file
        bridged = False  # two cards joined by an NVLink bridge (named so in the case id)
        framework = r["framework"]
        pcie = None  # PCIe tree fields of a server whose wiring its logs show
        p2p_level = None  # NCCL_P2P_LEVEL of a run whose NCCL had another default
        if src == "Lambda":
            intra, network, gbps, strategy = "pcie", None, None, "ring_allreduce"
            framework = run_framework(r["source"], framework, r["gpu"])
            if r["gpu"] in LAMBDA_XLA_LOGS:
                notes.append(f"run set: logs/{LAMBDA_XLA_LOGS[r['gpu']]}.logs in Lambda's repository "
                             "(LambdaColdStorage/lambda-tensorflow-benchmark): its throughputs equal the summary "
                             "table's at every GPU count, and each log prints 'Compiled cluster using XLA!': XLA "
                             "auto-clustering (simulated as workload.kernel_fusion norm_activation and "
                             "workload.graph_compiler xla: gradients leave backward at training.xla_release_points "
                             "points, not as each is ready)")
            n_gpus = int(r["total_gpus"])
            if r["gpu"] in EPYC_7502_CARDS:
                scenario_layout, p2p_level = "pcie_tree", "SYS"
                pcie = {"pcie_switches": n_gpus, "sockets": 2 if n_gpus == 8 else 1}
                notes.append("server wiring from the run's logs (GPU PCI buses 01, 25, 41, 61, 81, a1, c1, e1 on a "
                             "dual EPYC 7502): every GPU on its own root port, four per socket (scenario file); the "
                             "logs load CUDA 11.0, so TensorFlow 1.15 was NVIDIA's build, whose NCCL 2.7/2.8 copies "
                             "peer to peer between GPUs on AMD CPUs at any distance (p2p_level SYS)")
            if r["gpu"] in GOLD_6230_CARDS and n_gpus >= 4:
                scenario_layout = "pcie_tree"
                pcie = {"pcie_switches": n_gpus // 2, "sockets": 2 if n_gpus == 8 else 1}
                notes.append("server wiring from the run's logs (GPU PCI buses 1a/1b, 3d/3e, 88/89, b1/b2 on a "
                             f"dual Xeon Gold 6230): two GPUs per PCIe switch, {pcie['pcie_switches']} switches on "
                             f"{pcie['sockets']} socket(s) for GPUs 0-{n_gpus - 1} (scenario file)")
            if r["gpu"] in PCIE_LAMBDA_GPUS and r["intra_node"] == "PCIe":
                if r["gpu"] in ("RTX 3090", "RTX 3080"):
                    notes.append(f"{r['gpu']} PCIe server: GeForce, no PCIe P2P (simulated host-staged)")
                elif r["gpu"] in ("RTX 8000", "RTX A6000"):
                    notes.append(f"{r['gpu']} PCIe server: professional card, PCIe P2P on (the catalog's default)")
            elif r["gpu"] == "V100 32GB" and r["total_gpus"] == "8":
                gpu, intra = "V100-SXM2-32GB", "nvswitch"
                notes.append("the run's own log (same repository, logs/Platinum-Tesla_V100-SXM3-32GB_HP16_TF2_2.logs: "
                             "the 1- and 8-GPU figures are these rows' values) lists 16x Tesla V100-SXM3-32GB, TF "
                             "2.2.0, driver 440.33.01: a Hyperplane-16 server, GPUs on NVSwitch (DGX-2 style); "
                             "V100-SXM2-32GB (same GV100 peaks) stands in for the SXM3 card, and the one-GPU "
                             "baseline is the same server's, so only the topology matters; the same logs show "
                             "tf_cnn_benchmarks --use_fp16 without XLA scaling ResNet/Inception to 0.44-0.60 at 8 "
                             "GPUs on four servers (V100 SXM3, A100 SXM4, Quadro RTX 8000, RTX 2080 Ti) where the "
                             "XLA runs of the A100 and Quadro servers reach 0.91-0.98 (AlexNet and VGG-16 0.92-1.09 "
                             "without XLA): a host-side cost of one process driving every GPU that the simulator "
                             "does not model")
            elif r["gpu"] == "RTX 2080Ti NVLink" and r["total_gpus"] == "2":
                # Simulated without the bridge: the run most likely could not use it (notes).
                gpu, bridged = "RTX-2080Ti", True
                notes.append("two RTX 2080 Ti joined by an NVLink bridge, simulated as the unbridged pair (GeForce, "
                             "no P2P: NCCL stages through host memory): the source does not say whether the run "
                             "could use the bridge, and the evidence says it did not: these rows measure the "
                             "unbridged pair's throughput to within 0.6% (VGG-16 fp32 275 vs 275 img/s), and "
                             "Lambda's 2020 logs of its two bridged 8x 2080 Ti servers (same repository, "
                             "logs/Gold_6230-GeForce_RTX_2080_Ti_NVLink_trt[2]_TF1_15.logs) show TensorFlow's "
                             "peer-access matrix N between GPUs 0 and 1 on one server (its 2-GPU runs equal the "
                             "unbridged server's, VGG-16 fp32 290 vs 291 img/s) and Y on the other (+8% VGG-16, "
                             "+10% AlexNet and ResNet-152 over its unbridged sibling); 4- and 8-GPU bridged-pairs "
                             "servers cannot be described and are left out")
            elif r["gpu"] == "RTX 8000 NVLink" and r["total_gpus"] == "2":
                gpu, scenario_layout, bridged = "Quadro-RTX-8000", "bridge2", True
                notes.append("two Quadro RTX 8000 joined by an NVLink bridge (2 links, 50 GB/s each way): scenario "
                             "file uses a 2-GPU nvswitch layout at the bridge's bandwidth; 4- and 8-GPU "
                             "bridged-pairs servers cannot be described and are left out")
            else:
                continue
        elif src in ("NVIDIA-DLE-MXNet", "Paddle-report", "NVIDIA-DLE-PyTorch-RN50", "NVIDIA-DLE-TF-RN50"):
            if not ("V100" in r["gpu"] or "DGX A100" in r["gpu"]) or r["intra_node"].startswith("unspecified"):
                continue
            intra = "nvswitch" if "NVSwitch" in r["intra_node"] else "nvlink"
            network, gbps, strategy = None, None, "ring_allreduce"
            if "DGX A100" in r["gpu"]:
                notes.append("DGX A100: 8 GPUs on NVSwitch (nvswitch layout)")
        elif src == "NVIDIA-DLE-PyTorch-BERT":
            if "DGX-2H" in r["gpu"] or not ("DGX-1" in r["gpu"] or "DGX-2" in r["gpu"]):
                continue  # DGX-2H: V100 SXM3 at higher clocks, no same-card catalog GPU and no 1-GPU row
            intra = "nvswitch" if "DGX-2" in r["gpu"] else "nvlink"
            strategy = "ring_allreduce"
            network, gbps = (None, None)
            if int(r["nodes"]) > 1:
                network, gbps = "infiniband", 400.0
                notes.append("network 4x100 Gb/s EDR from the DGX-1 spec, not stated by the source; "
                             + PYTORCH_BERT_ACCUMULATION)
        elif src == "NVIDIA-DLE-TF-BERT":
            # One DGX-1 (NVLink) or DGX-2 (NVSwitch); Horovod and XLA come from the framework text.
            intra = "nvswitch" if "DGX-2" in r["gpu"] else "nvlink"
            network, gbps, strategy = None, None, "ring_allreduce"
            notes.append(TF_BERT_NOTE)
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
        scenario = None
        # the row's name: its case id ends in "gpu", its scenario file's does not
        # NVIDIA's BERT tables ran the same card in a DGX-1 and a DGX-2: named apart
        system = "-dgx2" if "DGX-2" in r["gpu"] else ""
        stem = (f"{src}-{zoo_model}{'-s' + str(seq) if seq not in (None, 128) else ''}"
                f"{'-nvlinkbridge' if bridged else ''}{system}-{gpu}-{precision}-b{int(batch)}"
                f"-{r['nodes']}x{r['gpus_per_node']}")
        if seq not in (None, 128) or scenario_layout is not None:
            scenario = write_scenario(
                stem,
                nodes=int(r["nodes"]), gpus_per_node=int(r["gpus_per_node"]), gpu=gpu,
                layout=scenario_layout or LAYOUT_OF[intra], network=network, gbps=gbps,
                model=zoo_model, batch=int(batch), precision=precision, seq=seq if seq not in (None, 128) else None,
                # the preset the row's text names, as a row without a file gets it
                framework=preset_for_text(framework, strategy), pcie=pcie, p2p_level=p2p_level,
                text_fields=workload_for_text(framework, zoo_model, precision),
            )
            if seq not in (None, 128):
                notes.append(f"sequence length {seq}: scenario file sets workload.sequence_length")
        rows.append(row(
            case_id=f"{stem}gpu",
            source=src, model=zoo_model, gpu=gpu, nodes=int(r["nodes"]), gpus_per_node=int(r["gpus_per_node"]),
            intra_node=intra, network_gbps=gbps, network=network, strategy=strategy,
            batch_per_gpu=int(batch), precision=precision, metric="throughput_samples_per_s",
            value=float(r["value"]), baseline_throughput_samples_per_s=base, framework=framework,
            scenario=scenario, notes="; ".join(notes),
        ))
    return rows


def ps_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    dell = df[df["source"].str.contains("Dell EMC HPC") & df["sync"].str.startswith("ps (MXNet kvstore dist")]
    one_gpu = dell[(dell["nodes"].astype(int) * dell["gpus_per_node"].astype(int)) == 1]
    base = float(one_gpu["value"].iloc[0]) if len(one_gpu) == 1 else None
    for idx, r in dell.iterrows():
        n, g = int(r["nodes"]), int(r["gpus_per_node"])
        if n * g == 1:
            continue
        rows.append(row(
            case_id=f"Dell-P100-blog-googlenet-mxnet-ps-{n}x{g}", source="Dell-P100-blog", model="googlenet",
            gpu="P100-PCIe-16GB", nodes=n, gpus_per_node=g, intra_node="pcie", network="infiniband",
            strategy="parameter_server", ps_placement="colocated", batch_per_gpu=144 // g, precision="fp32",
            metric="throughput_samples_per_s", value=float(r["value"]), baseline_throughput_samples_per_s=base,
            baseline_batch_per_gpu=144 if base is not None else None, framework=r["framework"],
            notes=(f"raw row {idx}: {r['notes']}; read as MXNet's per-machine --batch-size 144 split over "
                   f"{g} GPUs; baseline: the source's one-GPU MXNet run, 1 GPU at --batch-size 144 (strong "
                   "scaling: the roofline carries it from batch 144 to this batch); InfiniBand type not "
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


def headline_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    """Headline efficiencies / speedups (relative to one GPU) whose hardware the sources state.

    Left out: Goyal et al. (efficiency relative to 8 GPUs, not one), Sony-table rows (batch
    per GPU and node layout not in the raw rows), Poseidon (GPU and network unverified;
    VGG19-22K not in the zoo), ChainerMN abstract (hardware not stated), FireCaffe
    (time-to-accuracy with a larger batch, not a per-iteration speedup), BytePS relative
    speedups vs Horovod (no GPU count), the Dell P100 blog speedups (duplicates of its
    throughput rows / Inception-BN not in the zoo / TensorFlow mode not stated)."""
    rows = []
    hv = {"InceptionV3": "inception_v3", "ResNet-101": "resnet101", "VGG-16": "vgg16"}
    for idx, r in df[df["source"].str.contains("Horovod docs")].iterrows():
        if r["metric"] != "efficiency" or r["model"] not in hv:
            continue
        m = hv[r["model"]]
        rows.append(row(
            case_id=f"Horovod-docs-{m}-512gpu-eff", source="Horovod-docs", model=m, gpu="P100-PCIe-16GB",
            nodes=128, gpus_per_node=4, intra_node="pcie", network="roce", network_gbps=25.0,
            strategy="ring_allreduce", batch_per_gpu=32, precision="fp32", metric="scaling_efficiency",
            value=float(r["value"]), framework=r["framework"],
            notes=(f"raw row {idx}: {r['notes']}; ASSUMED: 'Pascal' GPU read as P100 PCIe 16 GB on a PCIe server "
                   "(4 GPUs/server, 128 servers, 25 Gb/s RoCE as stated); batch 32/GPU from Horovod maintainer "
                   "(issue horovod#425: 'we keep the number of examples per worker constant at 32'); fp32"),
        ))
    for idx, r in df[df["source"].str.contains("Sergeev & Del Balso")].iterrows():
        ps = r["sync"].startswith("ps")
        for m in ("inception_v3", "resnet101"):
            rows.append(row(
                case_id=f"Horovod-paper-{m}-128gpu-{'tf-ps' if ps else 'horovod'}-eff", source="Horovod-paper",
                model=m, gpu="P100-PCIe-16GB", nodes=32, gpus_per_node=4, intra_node="pcie", network="ethernet",
                network_gbps=25.0, strategy="parameter_server" if ps else "ring_allreduce",
                num_ps=32 if ps else None, ps_placement="colocated" if ps else None, batch_per_gpu=32,
                precision="fp32", metric="scaling_efficiency", value=float(r["value"]),
                framework=r["framework"].replace("(gRPC PS)", "(gRPC PS; tf_cnn_benchmarks)"),
                notes=(f"raw row {idx}: {r['notes']}; the figure covers Inception V3 and ResNet-101 together, one "
                       "row per model; ASSUMED: P100 PCIe, 4 GPUs per server, batch 32/GPU (horovod#425), fp32"
                       + ("; ASSUMED one colocated parameter server per node (TF PS count not stated); ASSUMED "
                          "tf_cnn_benchmarks --variable_update=parameter_server, the TensorFlow benchmark the "
                          "paper's Horovod figures ran" if ps else "")),
            ))
    for idx, r in df[df["source"].str.contains("BytePS README") & (df["metric"] == "efficiency")].iterrows():
        bps = "BytePS" in r["sync"]
        rows.append(row(
            case_id=f"BytePS-README-bert_large-256gpu-{'byteps' if bps else 'horovod'}-eff", source="BytePS-README",
            model="bert_large", gpu="V100-SXM2-32GB", nodes=32, gpus_per_node=8, intra_node="nvlink",
            network="infiniband", network_gbps=100.0,
            strategy="parameter_server" if bps else "ring_allreduce", num_ps=32 if bps else None,
            ps_placement="dedicated" if bps else None, batch_per_gpu=64, precision="amp",
            metric="scaling_efficiency", value=float(r["value"]), framework=r["framework"],
            notes=(f"raw row {idx}: {r['notes']}; ASSUMED: 8x V100 32GB NVLink servers simulated as DGX-1 hybrid "
                   "cube mesh, 100 Gb/s RDMA simulated with InfiniBand latency, sequence length 128 (zoo default; "
                   "not stated)" + ("; BytePS as dedicated CPU servers, one per worker node (count not stated), "
                                    "intra-node reduce before push" if bps else "; Horovod/NCCL ring")),
        ))
    ready = df[df["source"].str.contains("Dell EMC Ready Solutions")]
    for idx, r in ready.iterrows():
        fw = r["framework"]
        fp16 = "FP16" in fw
        if fw.startswith("MXNet"):
            strat, ps = "parameter_server", dict(num_ps=8, ps_placement="colocated")
            how = "MXNet dist kvstore: one colocated server per node (assumed)"
        elif fw.startswith("TensorFlow"):
            strat, ps, how = "ring_allreduce", {}, "TensorFlow via Horovod ring (assumed)"
        else:
            strat, ps, how = "halving_doubling_allreduce", {}, "Caffe2/Gloo halving-doubling (assumed)"
        name = fw.split(",")[0].lower()
        rows.append(row(
            case_id=f"Dell-ReadySolutions-resnet50-{name}-{'amp' if fp16 else 'fp32'}-8x4", source="Dell-ReadySolutions",
            model="resnet50", gpu="V100-PCIe-16GB", nodes=8, gpus_per_node=4, intra_node="pcie",
            network="infiniband", network_gbps=100.0, strategy=strat, batch_per_gpu=128 if fp16 else 64,
            precision="amp" if fp16 else "fp32", metric="speedup", value=float(r["value"]), framework=fw, **ps,
            notes=(f"raw row {idx}: {r['notes']}; ASSUMED: EDR InfiniBand 100 Gb/s (Dell Ready Solution fabric; "
                   f"not stated on the page), V100 PCIe 16 GB, batch 64/GPU fp32 and 128/GPU fp16 (not stated), "
                   f"{how}"),
        ))
    dell = df[df["source"].str.contains("Scale-up vs Scale-out") & (df["metric"] == "speedup")]
    for idx, r in dell.iterrows():
        n = int(r["nodes"])
        scen = write_scenario(f"Dell-C4140M-resnet50-amp-b256-{n}x4", nodes=n, gpus_per_node=4,
                              gpu="V100-SXM2-16GB", layout="nvswitch", network="infiniband", gbps=100.0,
                              model="resnet50", batch=256, precision="amp",
                              framework=preset_for_text(r["framework"], "ring_allreduce"),
                              text_fields=workload_for_text(r["framework"], "resnet50", "amp"))
        rows.append(row(
            case_id=f"Dell-C4140M-resnet50-{n}x4-speedup", source="Dell-C4140M-whitepaper", model="resnet50",
            gpu="V100-SXM2-16GB", nodes=n, gpus_per_node=4, intra_node="nvswitch",
            network="infiniband" if n > 1 else None, network_gbps=100.0 if n > 1 else None,
            strategy="ring_allreduce", batch_per_gpu=256, precision="amp", metric="speedup",
            value=float(r["value"]), framework=r["framework"], scenario=scen,
            notes=(f"raw row {idx}: {r['notes']}; scenario: 4 V100 SXM2 all-to-all NVLink (C4140 config M) as a "
                   "4-GPU nvswitch layout; ASSUMED: mixed precision (batch 256 on 16 GB), V100 16 GB, EDR 100 Gb/s "
                   "(ConnectX-5 stated, rate presumed), 2 nodes for 8 GPUs (inferred by the raw row)"),
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
    rows = training_rows(df) + ps_rows(df) + headline_rows(df) + collective_rows(df)
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
