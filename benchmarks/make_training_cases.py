"""Write ``scenarios/validation/training_cases.csv``: multi-GPU training measurements
from public sources outside ``../shared/measured`` (measured-runs format of
``simulator/validation/cases.py``).

Every number below is copied from the cited page as stated there (tables or text; nothing
read off a plot). Configuration details the source does not state are marked ASSUMED in
the row's notes. Where a source gives a one-GPU throughput of the same model, batch and
framework it is the row's ``baseline_throughput_samples_per_s``.

    python benchmarks/make_training_cases.py [-o OUT]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
import yaml  # noqa: E402

from simulator.validation.cases import DATA_PARALLEL_COLUMNS as COLUMNS  # noqa: E402
from simulator.validation.framework_text import workload_for_text  # noqa: E402

OUT = REPO_ROOT / "scenarios" / "validation" / "training_cases.csv"


def row(**kw) -> dict[str, str]:
    out = dict.fromkeys(COLUMNS, "")
    for k, v in kw.items():
        out[k] = "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
    return out


def horovod_readme_2017() -> list[dict[str, str]]:
    """Horovod README benchmark table before 2017-10-17 (removed in PR #44; the diff
    shows the table): one-GPU baseline at batch 64 and 16-GPU throughput for distributed
    TensorFlow (parameter servers) and Horovod (allreduce on CPU / on GPU with NCCL,
    TCP / RDMA)."""
    url = "https://github.com/horovod/horovod/pull/44 (README diff: old benchmark table)"
    base = {"inception_v3": 134.4, "resnet101": 119.4, "vgg16": 130.9}
    table = {  # setup -> (inception_v3, resnet101, vgg16) images/s on 16 GPUs
        "tf-ps": (1345.8, 959.6, 74.7),
        "tf-ps-vars-on-cpu": (1576.4, 1168.8, 79.5),
        "horovod-tcp-cpu": (2073.3, 1338.3, 616.8),
        "horovod-rdma-cpu": (2073.1, 1446.3, 618.0),
        "horovod-tcp-nccl": (1990.7, 1685.1, 1308.7),
        "horovod-rdma-nccl": (2022.6, 1746.2, 1787.4),
    }
    what = {
        "tf-ps": "Distributed TensorFlow (parameter servers, variables on the PS GPU)",
        "tf-ps-vars-on-cpu": "Distributed TensorFlow (variables on CPU)",
        "horovod-tcp-cpu": "TCP Horovod (allreduce on CPU, MPI)",
        "horovod-rdma-cpu": "RDMA Horovod (allreduce on CPU, MPI)",
        "horovod-tcp-nccl": "TCP Horovod (allreduce on GPU with NCCL)",
        "horovod-rdma-nccl": "RDMA Horovod (allreduce on GPU with NCCL)",
    }
    rows = []
    for setup, values in table.items():
        ps = setup.startswith("tf-ps")
        for model, value in zip(base, values):
            rows.append(row(
                case_id=f"Horovod-README-2017-{model}-{setup}-4x4", source="Horovod-README-2017", model=model,
                gpu="P100-PCIe-16GB", nodes=4, gpus_per_node=4, intra_node="pcie",
                network="roce" if "rdma" in setup else "ethernet",
                network_gbps=25.0, strategy="parameter_server" if ps else "ring_allreduce",
                num_ps=4 if ps else None, ps_placement="colocated" if ps else None, batch_per_gpu=64,
                precision="fp32", metric="throughput_samples_per_s", value=value,
                baseline_throughput_samples_per_s=base[model],
                framework=f"TensorFlow tf_cnn_benchmarks; {what[setup]}",
                notes=(f"{url}; 16 GPUs, single-GPU baseline batch 64 from the same table. ASSUMED: 4 servers x 4 "
                       "Pascal GPUs (Horovod docs example -H server1:4..server4:4), GPU read as P100 PCIe 16 GB on a "
                       "PCIe server, network the README's RoCE-capable 25 Gb/s Ethernet (stated for its later "
                       "512-GPU chart), fp32"
                       + ("; ASSUMED one colocated parameter server per node (TF PS count not stated)" if ps else
                          "; allreduce on CPU runs the mpi backend (copies to host memory, ring between hosts, CPU "
                          "sums); RDMA is RoCE (the catalog's RDMA latency), TCP the Ethernet figure"
                          if "cpu" in setup else "; RDMA is RoCE (the catalog's RDMA latency), TCP the Ethernet "
                          "figure")),
            ))
    return rows


def horovod_416() -> list[dict[str, str]]:
    url = "https://github.com/horovod/horovod/issues/416"
    rows = []
    for nodes, gpn, value in ((1, 4, 650.92), (2, 8, 2379.56)):
        rows.append(row(
            case_id=f"horovod-416-resnet101-{nodes}x{gpn}", source="horovod-issue-416", model="resnet101",
            gpu="V100-PCIe-16GB", nodes=nodes, gpus_per_node=gpn, intra_node="pcie",
            network="ethernet" if nodes > 1 else None, network_gbps=40.0 if nodes > 1 else None,
            strategy="ring_allreduce", batch_per_gpu=64, precision="fp32", metric="throughput_samples_per_s",
            value=value, baseline_throughput_samples_per_s=202.78,
            framework="TensorFlow tf_cnn_benchmarks + Horovod (NCCL, GPUDirect RDMA 'gdr'), CUDA 9.0",
            notes=(f"{url}; stated: V100, 2 servers x 8 GPUs, 4 GPUs per PCIe switch (x16), 2 CPUs joined by QPI, "
                   "RoCE-capable 40 Gb/s (ConnectX-3 Pro), fp32 mini-batch 64, 1 GPU 202.78 images/s. ASSUMED: "
                   "V100 PCIe 16 GB (maintainer: 'they really need NVLink', i.e. PCIe cards); RoCE simulated as "
                   "Ethernet" + ("; the 4-GPU run is one node" if nodes == 1 else "")),
        ))
    return rows


def horovod_779() -> list[dict[str, str]]:
    url = "https://github.com/horovod/horovod/issues/779"
    rows = []
    for gpus, value in ((8, 6679.0), (16, 12828.0), (32, 23870.0), (64, 47195.0), (128, 89783.0)):
        nodes = gpus // 8
        rows.append(row(
            case_id=f"horovod-779-resnet50-{nodes}x8", source="horovod-issue-779", model="resnet50",
            gpu="V100-SXM2-16GB", nodes=nodes, gpus_per_node=8, intra_node="nvlink",
            network="ethernet" if nodes > 1 else None, network_gbps=25.0 if nodes > 1 else None,
            strategy="ring_allreduce", batch_per_gpu=256, precision="amp", metric="throughput_samples_per_s",
            value=value, baseline_throughput_samples_per_s=872.0,
            framework="TensorFlow tf_cnn_benchmarks + Horovod, synthetic data",
            notes=(f"{url}; stated: AWS p3.16xlarge (8x V100-SXM2-16GB, 25 Gb/s), synthetic ResNet-50, 1 GPU 872 "
                   "images/s, scaling table 1-128 GPUs. ASSUMED: mixed precision (872 images/s on one V100 is a "
                   "tensor-core rate) and batch 256/GPU (not stated); p3.16xlarge NVLink = DGX-1 hybrid cube mesh; "
                   "TCP (no GPUDirect RDMA on AWS)"),
        ))
    return rows


def aws_samples_2() -> list[dict[str, str]]:
    url = "https://github.com/aws-samples/deep-learning-models/issues/2"
    rows = []
    for nodes, gpn, value in ((1, 2, 1481.3), (1, 8, 5000.0), (2, 8, 9860.0), (4, 8, 21300.0), (8, 8, 37000.0)):
        rows.append(row(
            case_id=f"aws-dlm-2-resnet50-{nodes}x{gpn}", source="aws-deep-learning-models-issue-2", model="resnet50",
            gpu="V100-SXM2-16GB", nodes=nodes, gpus_per_node=gpn, intra_node="nvlink",
            network="ethernet" if nodes > 1 else None, network_gbps=25.0 if nodes > 1 else None,
            strategy="ring_allreduce", batch_per_gpu=256, precision="amp", metric="throughput_samples_per_s",
            value=value, baseline_throughput_samples_per_s=740.0,
            framework="TensorFlow + Horovod (aws-samples/deep-learning-models ResNet-50 example, DL AMI v13), "
                      "real ImageNet data from local EBS",
            notes=(f"{url}; stated: p3 instances (p3.16xlarge, 8 V100), default params 'batch size 256', 1 GPU 740 "
                   "images/s; 8x8 value stated as ~37000. ASSUMED: mixed precision (the example's default, and "
                   "740 images/s is a tensor-core rate); V100-SXM2-16GB, DGX-1 style NVLink, 25 Gb/s Ethernet (the "
                   "p3.16xlarge spec; not stated in the thread)"),
        ))
    return rows


def horovod_396() -> list[dict[str, str]]:
    url = "https://github.com/horovod/horovod/issues/396"
    rows = []
    data = [("resnet50", g, v, "wskinner") for g, v in ((8, 2697.29), (16, 2632.95), (32, 4772.04), (64, 9745.38))]
    data += [("resnet101", g, v, "richardliaw") for g, v in
             ((8, 1523.0), (16, 1529.0), (32, 2958.0), (64, 5806.0), (128, 11384.0))]
    for model, gpus, value, who in data:
        nodes = gpus // 8
        case_id = f"horovod-396-{model}-{nodes}x8"
        rows.append(row(
            case_id=case_id, source="horovod-issue-396", model=model,
            scenario=horovod_396_system(case_id, model, nodes) if nodes > 1 else None,
            gpu="V100-SXM2-16GB", nodes=nodes, gpus_per_node=8, intra_node="nvlink",
            network="ethernet" if nodes > 1 else None, network_gbps=25.0 if nodes > 1 else None,
            strategy="ring_allreduce", batch_per_gpu=64, precision="fp32", metric="throughput_samples_per_s",
            value=value, framework="TensorFlow 1.8 tf_cnn_benchmarks + Horovod, synthetic data",
            notes=(f"{url} (comment by {who}); stated: p3.16xlarge instances, TF 1.8, CUDA 9.0, tf_cnn_benchmarks "
                   "synthetic data, no RDMA on AWS. No one-GPU throughput given (compute from the roofline model). "
                   "ASSUMED: batch 64/GPU (tf_cnn_benchmarks default for these models), fp32 (about 340 and 190 "
                   "images/s per GPU), V100-SXM2-16GB in the DGX-1 style hybrid cube mesh, 25 Gb/s Ethernet "
                   "(p3.16xlarge spec)" + ("" if nodes == 1 else "; " + HOROVOD_396_NETWORK)),
        ))
    return rows


HOROVOD_396_NETWORK = (
    "scenario file: one 25 Gb/s NIC per node (p3.16xlarge's one ENA interface); NCCL of TF 1.8's era (2.2) "
    "builds one ring per NIC across nodes (NCCL 2.3.5 src/transport/net.cu netGetRings uses each NIC once) "
    "and its socket transport opens one TCP connection per ring (multi-socket transfers came in 2.4.8), "
    "and AWS caps one flow at 5 Gb/s outside a cluster placement group (EC2 network bandwidth docs; the "
    "thread: a placement group later gave +13%): max_channels 1, net_connection_gbps 5"
)


def horovod_396_system(case_id: str, model: str, nodes: int) -> str:
    """Write the scenario of a multi-node horovod-396 row (what the CSV columns cannot
    say: one NIC, one ring, one TCP flow capped by AWS) and return its CSV path."""
    data = {
        "name": case_id,
        "cluster": {"nodes": nodes, "gpus_per_node": 8, "gpu": "V100-SXM2-16GB",
                    "server": {"layout": "dgx1", "nics": 1},
                    "nic": {"bandwidth_gbps": 25.0, "latency_us": 20.0}},
        "workload": {"model": model, "batch_per_gpu": 64, "precision": "fp32"},
        "training": {"strategy": "ring_allreduce", "framework": "horovod",
                     "collectives": {"max_channels": 1, "net_connection_gbps": 5.0}},
    }
    return write_system(case_id, data)


def write_system(case_id: str, data: dict) -> str:
    """Write a row's scenario file under training_systems/ and return its CSV path."""
    rel = f"training_systems/{case_id}.yaml"
    text = "# Generated by benchmarks/make_training_cases.py; see the case's notes.\n" + yaml.safe_dump(
        data, sort_keys=False)
    (OUT.parent / rel).write_text(text, encoding="utf-8")
    return rel


def byteps_29() -> list[dict[str, str]]:
    url = "https://github.com/bytedance/byteps/issues/29"
    common = dict(model="resnet50", gpu="V100-SXM2-16GB", nodes=2, gpus_per_node=1, intra_node="pcie",
                  network="ethernet", network_gbps=20.0, batch_per_gpu=32, precision="fp32",
                  metric="throughput_samples_per_s")
    note = (f"{url} (comment by bobzhuyb); stated: 2 VMs with one V100 GPU each plus 2 CPU-only VMs, iperf 21.1 "
            "Gb/s with 4 streams, TF 1.13.1, tf_cnn_benchmarks resnet50 batch 32, sgd, synthetic data. No one-GPU "
            "throughput given. ASSUMED: V100 SXM2 16 GB (cloud V100; form factor not stated), fp32, 20 Gb/s "
            "Ethernet")
    return [
        row(case_id="byteps-29-resnet50-2x1-byteps", source="byteps-issue-29", strategy="parameter_server",
            num_ps=2, ps_placement="dedicated", value=389.0, framework="TensorFlow + BytePS (TCP, DMLC_ENABLE_RDMA=0)",
            scenario=byteps_29_byteps_system(),
            notes=note + "; BytePS servers = the 2 CPU-only VMs (dedicated parameter servers); " + BYTEPS_29_PS,
            **common),
        row(case_id="byteps-29-resnet50-2x1-horovod", source="byteps-issue-29", strategy="ring_allreduce",
            value=298.29, framework="TensorFlow + Horovod 0.16.4 (TCP)", scenario=byteps_29_horovod_system(),
            notes=note + "; " + BYTEPS_29_NETWORK, **common),
    ]


BYTEPS_29_NETWORK = (
    "scenario file: NCCL 2.3.7 (the maintainer's reference in the thread) opens one TCP connection per ring "
    "and builds one ring per NIC, so the allreduce crosses the network on one TCP stream: net_connection_gbps "
    "5.3, the source's own iperf figure per stream (21.1 Gb/s over 4 streams)"
)


BYTEPS_29_PS = (
    "scenario file: BytePS over ps-lite/ZeroMQ (DMLC_ENABLE_RDMA=0) keeps one TCP connection per worker and "
    "server, each at most the source's own iperf figure per stream (21.1 Gb/s over 4 streams: "
    "connection_gbps 5.3); tensors cut into 4,096,000-byte partitions (BYTEPS_PARTITION_BYTES default, BytePS "
    "docs) spread over the servers (sharding even), pushed as backward produces them"
)


def byteps_29_byteps_system() -> str:
    case_id = "byteps-29-resnet50-2x1-byteps"
    return write_system(case_id, {
        "name": case_id,
        "cluster": {"nodes": 2, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB", "server": {"layout": "pcie_tree"},
                    "nic": {"bandwidth_gbps": 20.0, "latency_us": 20.0}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32, "precision": "fp32"},
        "training": {"strategy": "parameter_server", "overlap": True, "bucket_size_mib": 3.9,
                     "parameter_servers": {"count": 2, "placement": "dedicated", "sharding": "even",
                                           "connection_gbps": 5.3}},
    })


def byteps_29_horovod_system() -> str:
    case_id = "byteps-29-resnet50-2x1-horovod"
    return write_system(case_id, {
        "name": case_id,
        "cluster": {"nodes": 2, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB", "server": {"layout": "pcie_tree"},
                    "nic": {"bandwidth_gbps": 20.0, "latency_us": 20.0}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32, "precision": "fp32"},
        "training": {"strategy": "ring_allreduce", "framework": "horovod",
                     "collectives": {"max_channels": 1, "net_connection_gbps": 5.3}},
    })


MXNET_P2_URL = ("https://github.com/apache/mxnet/blob/a2195610db76704125f94acefe66f223fdb260b1/example/"
                "image-classification/README.md ('Scalability Results')")
# images/s per GPU count: alexnet (batch 512/GPU, 224x224), inception-v3 (32, 299x299), resnet-152 (32, 224x224)
MXNET_P2_TABLE = {
    1: (457.07, 30.4, 20.08), 2: (870.43, 59.61, 38.76), 4: (1514.8, 117.9, 77.01), 8: (2852.5, 233.39, 153.07),
    16: (4244.18, 447.61, 298.03), 32: (7945.57, 882.57, 595.53), 64: (15840.52, 1761.24, 1179.86),
    128: (31334.88, 3416.2, 2333.47), 256: (61938.36, 6660.98, 4630.42),
}
MXNET_P2_MODELS = (("alexnet", 512, "mxnet_example_alexnet.yml"), ("inception_v3", 32, None), ("resnet152", 32, None))
MXNET_P2_SETUP = (
    "stated: 16 AWS p2.16xlarge (16 K80 dies each, 256 GPUs), AWS Deep Learning AMI with CUDA 7.5 and cuDNN 5.1, "
    "batch per GPU fixed (alexnet 512, inception-v3 32, resnet-152 32), model sizes 203 / 95 / 240 MB, one-GPU "
    "throughput from the same table. The README's benchmark.py (the procedure it describes): synthetic data "
    "(--benchmark 1), one node runs kvstore 'device' with 1-16 GPUs, several nodes run 'dist_sync_device' with "
    "launch.py -s 2 x nodes servers, throughput = sum of the workers' speeds. "
    "p2.16xlarge as documented elsewhere: 20 Gb/s network, two groups of 8 GPUs with peer access inside a group "
    "only (tensorflow/tensorflow#5789, #5362: CUDA's 8-peer limit on this instance). ASSUMED: the servers two "
    "per node, colocated with the workers; each group of 8 under one PCIe switch on its own CPU socket "
    "(pcie_tree, 2 switches, 2 sockets; 1-8 GPUs in one group); "
    "AlexNet is MXNet's example symbol (model file mxnet_example_alexnet.yml: 50.8 M parameters = the stated "
    "203 MB); Ethernet latency 20 us; no cap on one TCP connection (placement group not stated). "
    "The batch reaches the GPUs as MXNet's Module API of the time moved it: --benchmark 1 made the synthetic "
    "batch once in pageable CPU memory (example common/data.py before apache/mxnet#7028 'Use pinned memory in "
    "benchmark mode') and every step copies each GPU's slice into the executor's data array, which conv1's "
    "backward reads, so nothing hides the copy (workload.input_copy: exposed). The socket link's rate for a "
    "GPU reading the other socket's memory: 3.78 GB/s host to device, measured on a two-socket server with a "
    "Tesla P100 PCIe (CUDA bandwidthTest with process and memory on the other socket, 12.15 GB/s from its own; "
    "mpicbg-scicomp/gearshifft#82, March 2017), for the p2.16xlarge's two Broadwell sockets "
    "(cluster.server.qpi_bandwidth_gbytes_s 3.78; 16-GPU nodes only)"
)


def mxnet_p2_scalability() -> list[dict[str, str]]:
    """MXNet's image-classification README: weak scaling of three CNNs on 1-256 K80
    dies (16 p2.16xlarge), kvstore device on one node, ps-lite servers across nodes."""
    rows = []
    for gpus, values in MXNET_P2_TABLE.items():
        if gpus == 1:
            continue
        nodes, per_node = max(1, gpus // 16), min(gpus, 16)
        for (model, batch, model_file), value, base in zip(MXNET_P2_MODELS, values, MXNET_P2_TABLE[1]):
            case_id = f"MXNet-P2-{model}-K80-b{batch}-{nodes}x{per_node}"
            ps = nodes > 1
            rows.append(row(
                case_id=case_id, source="MXNet-README-P2", model=model, gpu="K80", nodes=nodes,
                gpus_per_node=per_node, intra_node="pcie", network="ethernet" if ps else None,
                network_gbps=20.0 if ps else None, strategy="parameter_server" if ps else "ring_allreduce",
                num_ps=2 * nodes if ps else None, ps_placement="colocated" if ps else None, batch_per_gpu=batch,
                precision="fp32", metric="throughput_samples_per_s", value=value,
                baseline_throughput_samples_per_s=base,
                scenario=mxnet_p2_system(case_id, model, model_file, batch, nodes, per_node),
                framework="MXNet (late 2016) example train_imagenet.py, kvstore " + (
                    "dist_sync_device" if ps else "device"),
                notes=f"{MXNET_P2_URL}; {MXNET_P2_SETUP}",
            ))
    return rows


def mxnet_p2_system(case_id: str, model: str, model_file: str | None, batch: int, nodes: int, per_node: int) -> str:
    two_groups = per_node > 8
    workload: dict = {"model_file": model_file} if model_file else {"model": model}
    workload.update(batch_per_gpu=batch, precision="fp32", input_copy="exposed")
    training: dict = {"framework": "mxnet_kvstore_device"}
    if nodes > 1:
        training = {"strategy": "parameter_server", "framework": "mxnet_dist_sync",
                    "parameter_servers": {"count": 2 * nodes, "placement": "colocated"}}
    return write_system(case_id, {
        "name": case_id,
        "cluster": {"nodes": nodes, "gpus_per_node": per_node, "gpu": "K80",
                    "server": {"layout": "pcie_tree", "sockets": 2 if two_groups else 1,
                               "pcie_switches": 2 if two_groups else 1,
                               **({"qpi_bandwidth_gbytes_s": 3.78} if two_groups else {})},
                    "nic": {"bandwidth_gbps": 20.0, "latency_us": 20.0}},
        "workload": workload,
        "training": training,
    })


SERVER_GEAR_2080TI_URL = "https://server-gear.com/shop/index.php/blog/rtx2080ti10gpu_benchmarks/"
SERVER_GEAR_RTX8000_URL = "https://server-gear.com/shop/index.php/blog/rtx8000x4gpu_benchmarks/"
# model -> (batch per GPU, images/s at 1, 2, 4, 8, 10 GPUs), "FP16 (XLA on)" table; the page's
# NASNet and Inception-v4 rows are left out (not in the model zoo).
SERVER_GEAR_2080TI = {
    "resnet50": (128, (808.94, 1473.41, 2629.64, 4898.68, 6061.55)),
    "inception_v3": (128, (482.45, 901.23, 1695.87, 3266.71, 4048.04)),
    "vgg16": (64, (393.98, 598.41, 780.44, 1298.8, 1599.04)),
    "resnet152": (64, (328.01, 534.75, 881.21, 1569.11, 1962.03)),
}
# model -> (batch per GPU, images/s at 1, 2, 4 GPUs), "Quadro RTX 8000 48GB x4 (NVLink無し)" table
SERVER_GEAR_RTX8000 = {
    "resnet50": (1024, (1046.94, 2047.45, 4066.72)),
    "inception_v3": (512, (627.24, 1225.64, 2452.15)),
    "vgg16": (512, (621.07, 1189.83, 2397.81)),
    "resnet152": (512, (488.37, 885.59, 1733.01)),
}
SERVER_GEAR_FLAGS = (
    "tf_cnn_benchmarks.py --data_format=NCHW --num_batches=100 --optimizer=momentum --variable_update=replicated "
    "--all_reduce_spec=nccl --use_fp16=True --nodistortions --gradient_repacking=2 --datasets_use_prefetch=True "
    "--per_gpu_thread_count=2 --loss_type_to_report=base_loss --compute_lr_on_cpu=True --single_l2_loss_op=True "
    "--xla_compile=True --local_parameter_device=gpu (batch, model and num_gpus changed per run)")
SERVER_GEAR_MECHANISM = (
    "simulated as: fp16 compute with fp32 variables (precision amp) and fp16 gradients on the wire "
    "(tensorflow_replicated_nccl preset); --xla_compile wraps each tower's forward pass and gradients in one "
    "tf.xla.experimental.compile (tensorflow/benchmarks benchmark_cnn.py maybe_compile), so every gradient "
    "leaves when that computation ends (graph_compiler xla, xla_release_points 1: a fact of the flag, not a fit) "
    "and XLA fuses batch norm with its ReLU and residual add (kernel_fusion norm_activation); "
    "--gradient_repacking=2 concatenates the gradients into 2 packs before the NCCL all-reduce (2 buckets); "
    "no --data_dir: synthetic data")


def server_gear() -> list[dict[str, str]]:
    """A Japanese system vendor's tf_cnn_benchmarks runs on its own servers: ten GeForce
    RTX 2080 Ti (no peer-to-peer) in a dual Xeon Gold 6230 server at 1-10 GPUs, and four
    Quadro RTX 8000 (peer-to-peer capable) in a dual Xeon Gold 6254 server at 1-4 GPUs,
    both fp16 with XLA."""
    notes_2080ti = (
        f"{SERVER_GEAR_2080TI_URL} (table 'GeForce RTX 2080 Ti Deep Learning ベンチマーク: FP16 (XLA on)'); "
        "stated: HPCDIY-XCLGPU10R4S, 10x GeForce RTX 2080 Ti 11GB, 2x Xeon Gold 6230, the standard "
        "tf_cnn_benchmarks.py with --batch_size, --model and --num_gpus changed per run (the printed "
        "command is cut after '--data_format=NCHW --batch_size=64 --num_batches=100 "
        "--model=inception4 --opt'), images/s at 1, 2, 4, 8 and 10 GPUs. ASSUMED: the rest of the "
        f"command as on the same vendor's Quadro RTX 8000 page of February 2020 ({SERVER_GEAR_FLAGS}), "
        "whose printed command begins with the same words; " + SERVER_GEAR_MECHANISM + "; the wiring "
        "(not stated): 5 GPUs under one PCIe switch per socket, the runs on the first N GPUs (2 and 4 "
        "on one switch; 8 and 10 over both sockets, 8 simulated as 4 + 4); TensorFlow version not stated")
    notes_rtx8000 = (
        f"{SERVER_GEAR_RTX8000_URL} (2020-02-15, table 'Quadro RTX 8000 48GB x4 (NVLink無し) Deep "
        "Learning ベンチマーク: FP16 (XLA on)'); stated: HPCDIY-XCLGPU4TS-DL, 4x Quadro RTX 8000 48GB "
        "without NVLink bridges, 2x Xeon Gold 6254, images/s at 1, 2 and 4 GPUs, and the command: "
        f"{SERVER_GEAR_FLAGS}; " + SERVER_GEAR_MECHANISM + "; ASSUMED wiring (not stated): 2 GPUs "
        "per socket on its root ports (simulated as one PCIe switch per socket), the 2-GPU run on "
        "one socket; TensorFlow version not stated")
    servers = (  # (table, GPU, GPU counts after the one-GPU column, GPUs per switch and socket, notes)
        (SERVER_GEAR_2080TI, "RTX-2080Ti", (2, 4, 8, 10), 5, notes_2080ti),
        (SERVER_GEAR_RTX8000, "Quadro-RTX-8000", (2, 4), 2, notes_rtx8000),
    )
    rows = []
    for table, gpu, counts, per_switch, notes in servers:
        for model, (batch, values) in table.items():
            for gpus, value in zip(counts, values[1:]):
                case_id = f"server-gear-{model}-{gpu}-amp-b{batch}-1x{gpus}"
                rows.append(row(
                    case_id=case_id, source="server-gear", model=model, gpu=gpu, nodes=1, gpus_per_node=gpus,
                    intra_node="pcie", strategy="ring_allreduce", batch_per_gpu=batch, precision="amp",
                    metric="throughput_samples_per_s", value=value, baseline_throughput_samples_per_s=values[0],
                    scenario=server_gear_system(case_id, model, batch, gpu, gpus, per_switch),
                    framework="TensorFlow tf_cnn_benchmarks, replicated variables, NCCL all-reduce, fp16, XLA",
                    notes=notes,
                ))
    return rows


def server_gear_system(case_id: str, model: str, batch: int, gpu: str, gpus: int, per_switch: int) -> str:
    """The scenario of a server-gear row: the first ``gpus`` GPUs of the server, whole
    switches of ``per_switch`` GPUs per socket (an uneven split, 5 + 3, simulated as 4 + 4)."""
    switches = 1 if gpus <= per_switch else 2
    # --gradient_repacking=2: two packs of the fp16 gradients; a bucket closes once it holds
    # its cap, so a cap just under half closes the first at half and leaves the rest as the second
    packs_mib = grad_mib_fp16(model) / 2
    return write_system(case_id, {
        "name": case_id,
        "cluster": {"nodes": 1, "gpus_per_node": gpus, "gpu": gpu,
                    "server": {"layout": "pcie_tree", "pcie_switches": switches, "sockets": switches}},
        "workload": {"model": model, "batch_per_gpu": batch, "precision": "amp", "kernel_fusion": "norm_activation",
                     "graph_compiler": "xla"},
        "training": {"strategy": "ring_allreduce", "framework": "tensorflow_replicated_nccl",
                     "xla_release_points": 1, "bucket_size_mib": round(packs_mib * 0.999, 3)},
    })


def grad_mib_fp16(model: str) -> float:
    from simulator.zoo import get_model

    return get_model(model).total_params * 2 / 2**20


def with_text_fields(rows: list[dict[str, str]]) -> None:
    """Give each row's scenario file the workload fields its framework text implies
    (``workload_for_text``) and the file does not set, as a row without a file gets them."""
    for r in rows:
        if not r["scenario"]:
            continue
        path = OUT.parent / r["scenario"]
        text = path.read_text(encoding="utf-8")
        header, _, body = text.partition("\n")
        data = yaml.safe_load(body)
        missing = {key: value for key, value in workload_for_text(r["framework"], r["model"], r["precision"]).items()
                   if key not in data["workload"]}
        if missing:
            data["workload"].update(missing)
            path.write_text(header + "\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = horovod_readme_2017() + horovod_416() + horovod_779() + aws_samples_2() + horovod_396() + byteps_29()
    rows += mxnet_p2_scalability() + server_gear()
    ids = [r["case_id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate case_id"
    with_text_fields(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} cases to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
