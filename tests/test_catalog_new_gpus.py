"""Closed-form checks of the GPUs added from their datasheets for the one-GPU dev set
(#14): GTX 1080, RTX 3080, RTX A6000, Quadro RTX 8000, and the RTX 4090 of the
collectives dev set. Each peak is the product of the
unit counts and the rated boost clock, and each bandwidth the bus width times the data
rate, so a mistyped figure fails here."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from simulator.catalog import get_gpu

from .conftest import REPO_ROOT

# name: (CUDA cores, rated boost MHz, SMs, bus bits, memory Gb/s per pin, GiB)
CARDS = {
    "GTX-1080": (2560, 1733, 20, 256, 10.0, 8),
    "RTX-3080": (8704, 1710, 68, 320, 19.0, 10),
    "RTX-A6000": (10752, 1800, 84, 384, 16.0, 48),
    "Quadro-RTX-8000": (4608, 1770, 72, 384, 14.0, 48),
    "RTX-4090": (16384, 2520, 128, 384, 21.0, 24),
}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_fp32_peak_is_two_flops_per_core_per_boost_clock(name):
    cores, boost_mhz, sms, *_ = CARDS[name]
    spec = get_gpu(name)
    # 2 FLOP (one FMA) per CUDA core per clock, rounded to 0.1 TFLOPS in the datasheets.
    assert spec.peak_flops("fp32") == pytest.approx(2 * cores * boost_mhz * 1e6, abs=0.05e12)
    assert spec.sm_count == sms
    # GP104, GA102 and AD102 SMs hold 128 FP32 cores, TU102's 64.
    assert cores == sms * (64 if spec.architecture == "Turing" else 128)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_bandwidth_is_bus_width_times_data_rate(name):
    _, _, _, bits, gbps, gib = CARDS[name]
    spec = get_gpu(name)
    assert spec.memory_bandwidth_gbytes_s == pytest.approx(bits * gbps / 8)
    assert spec.memory_gib == gib


def test_gtx1080_has_no_fast_fp16():
    # GP104 runs native fp16 at 1/64 rate: frameworks compute in fp32.
    gtx = get_gpu("GTX-1080")
    assert gtx.peak_flops("fp16") == gtx.peak_flops("fp32") == pytest.approx(8.9e12)
    assert not gtx.supports("tf32") and not gtx.supports("bf16")


def test_geforce_ampere_halves_fp32_accumulate_tensor_rate():
    # GA102 SM: 1024 dense fp16 tensor FLOP per clock with fp16 accumulate; GeForce runs
    # fp32 accumulate (what AMP uses) at half that: 68 x 1024 x 1.71 GHz / 2 = 59.5.
    rtx = get_gpu("RTX-3080")
    fp16_accumulate = 68 * 1024 * 1710e6
    assert fp16_accumulate == pytest.approx(119.0e12, abs=0.1e12)
    assert rtx.peak_flops("amp") == pytest.approx(fp16_accumulate / 2, abs=0.05e12)
    assert rtx.peak_flops("bf16") == rtx.peak_flops("fp16")
    # TF32 tensor math runs at the (doubled) CUDA-core fp32 rate on GeForce Ampere.
    for name in ("RTX-3080", "RTX-3090"):
        assert get_gpu(name).peak_flops("tf32") == get_gpu(name).peak_flops("fp32")
        assert get_gpu(name).peak_flops("amp") == pytest.approx(2 * get_gpu(name).peak_flops("fp32"), rel=0.01)


def test_professional_cards_run_fp32_accumulate_at_full_rate():
    # RTX A6000: 84 x 1024 x 1.8 GHz = 154.8, 4x its fp32; TF32 is half of fp16.
    a6000 = get_gpu("RTX-A6000")
    assert a6000.peak_flops("amp") == pytest.approx(84 * 1024 * 1800e6, abs=0.05e12)
    assert a6000.peak_flops("amp") == pytest.approx(4 * a6000.peak_flops("fp32"))
    assert a6000.peak_flops("tf32") == pytest.approx(a6000.peak_flops("amp") / 2)
    # Quadro RTX 8000: 576 tensor cores x 64 FMA x 2 x 1.77 GHz = 130.5 = 8x fp32, where
    # the GeForce RTX 2080 Ti (same TU102) gets 4x with fp32 accumulate.
    quadro = get_gpu("Quadro-RTX-8000")
    assert quadro.peak_flops("amp") == pytest.approx(576 * 64 * 2 * 1770e6, abs=0.05e12)
    assert quadro.peak_flops("amp") / quadro.peak_flops("fp32") == pytest.approx(8, rel=0.01)
    rtx2080ti = get_gpu("RTX-2080Ti")
    assert rtx2080ti.peak_flops("amp") / rtx2080ti.peak_flops("fp32") == pytest.approx(4, rel=0.01)


def test_interconnect_flags():
    # GeForce Ampere and Ada offer no PCIe peer-to-peer; the professional cards do. None
    # of the five has NVLink built in (the A6000 and RTX 8000 bridges are optional).
    assert get_gpu("RTX-3080").pcie_p2p is False and get_gpu("RTX-4090").pcie_p2p is False
    assert get_gpu("RTX-A6000").pcie_p2p is True and get_gpu("Quadro-RTX-8000").pcie_p2p is True
    assert [get_gpu(n).pcie_gen for n in sorted(CARDS)] == [3, 3, 4, 4, 4]
    assert all(get_gpu(n).nvlink_gbytes_s is None for n in CARDS)


def _single_gpu_benchmark():
    """benchmarks/accuracy_single_gpu.py, imported from its file."""
    spec = importlib.util.spec_from_file_location(
        "accuracy_single_gpu", REPO_ROOT / "benchmarks" / "accuracy_single_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_dev_set_names_map_to_the_new_entries():
    module = _single_gpu_benchmark()
    assert {k: module.GPU_MAP[k] for k in ("GTX 1080", "RTX 3080", "RTX A6000", "RTX 8000")} == {
        "GTX 1080": "GTX-1080", "RTX 3080": "RTX-3080", "RTX A6000": "RTX-A6000", "RTX 8000": "Quadro-RTX-8000"}
    # The laptop Max-Q cards stay out: their clocks depend on the laptop.
    assert not any("MAX-Q" in k.upper() for k in module.GPU_MAP)


def test_broken_rtx3090_fp16_run_gives_way_to_lambdas_rerun():
    """The summary table's RTX 3090 fp16 rows (a run whose fp16 ResNet-50 is slower than
    its fp32) are left out with their reason; the rerun's rows, read from benchmarks/data,
    are the RTX 3090's amp cases, each faster than the old run's fp32 of the model."""
    import pandas as pd

    bench = _single_gpu_benchmark()
    summary = ("Lambda Labs lambda-tensorflow-benchmark summary CSVs (github.com/LambdaColdStorage/"
               "lambda-tensorflow-benchmark)")
    old = pd.DataFrame([
        {"source": summary, "model": "resnet50", "gpu": "RTX 3090", "total_gpus": "1", "metric": "images_per_sec",
         "framework": f"TensorFlow tf_cnn_benchmarks, {precision}", "notes": "", "batch_per_gpu": batch,
         "value": value}
        for precision, batch, value in (("fp16", "96", "400"), ("fp32", "112", "554"))])
    extra = pd.concat(map(bench.read_rows, bench.EXTRA_CSVS), ignore_index=True)
    cases, skipped = bench.select_cases(pd.concat([old, extra], ignore_index=True), False, "skip")
    assert skipped[skipped["reason"].str.startswith("superseded")]["row"].tolist() == [0]
    amp = {c.model: c.measured for c in cases if c.gpu == "RTX-3090" and c.precision == "amp"}
    assert amp == {"resnet50": 1019.62, "resnet152": 467.8, "vgg16": 549.97, "inception_v3": 680.76}
    assert amp["resnet50"] > 554 > 400
    # the rerun's rows are XLA runs, simulated fused as the old Lambda rows are
    assert {c.workload.get("kernel_fusion") for c in cases if c.gpu == "RTX-3090"} == {"norm_activation"}


def test_mxnet_k80_inference_table_gives_way_to_its_training_table():
    """The K80 rows of MXNet's "Speed and Memory Footprint" table (an inference table:
    548-897 MB at batch 32) are left out as misread; the README's training table stands
    in: ResNet-152 at 20.08 images/s where the inference table says 57."""
    import pandas as pd

    bench = _single_gpu_benchmark()
    source = ("Apache MXNet example/image-classification/README.md ('Speed and Memory Footprint' table)")
    inference = pd.DataFrame([{"source": source, "model": "ResNet-152", "gpu": "K80 (single GPU die)",
                               "total_gpus": "1", "metric": "images_per_sec", "batch_per_gpu": "32", "value": "57",
                               "framework": "MXNet (2016-17 era, version not stated)", "notes": ""}])
    training_table = bench.read_rows(bench.REPO_ROOT / "benchmarks" / "data" / "mxnet_p2_one_gpu.csv")
    assert training_table["source"].str.contains("Scalability Results").all()
    cases, skipped = bench.select_cases(pd.concat([inference, training_table], ignore_index=True), False, "skip")
    assert skipped[skipped["reason"].str.startswith("misread")]["row"].tolist() == [0]
    k80 = {(c.model, c.batch): c.measured for c in cases if c.gpu == "K80"}
    assert k80 == {("inception_v3", 32): 30.4, ("resnet152", 32): 20.08}  # MXNet's AlexNet is not the zoo's
    assert 57 / k80[("resnet152", 32)] == pytest.approx(2.84, abs=0.01)


def test_mxnet_perf_tables_map_each_card_and_keep_mxnet_alexnet_approximate():
    """MXNet's perf.md training tables: 2016 (K80, M40, DGX-1 P100) and 2018 (K80, M60, V100
    of EC2), Inception-v3 and ResNet-50 from batch 1; MXNet's AlexNet is not the zoo's."""
    bench = _single_gpu_benchmark()
    rows = bench.read_rows(bench.REPO_ROOT / "benchmarks" / "data" / "mxnet_perf_faq_one_gpu.csv")
    cases, skipped = bench.select_cases(rows, False, "skip")
    assert len(rows) == 113 and len(cases) == 76
    assert set(skipped["reason"].str.split(":").str[0]) == {"model variant differs from the zoo's (--include-approx)"}
    by_gpu = {g: sorted(c.batch for c in cases if c.gpu == g and c.model == "resnet50")
              for g in ("K80", "M40", "M60", "P100-SXM2-16GB", "V100-SXM2-16GB")}
    assert by_gpu["V100-SXM2-16GB"] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert by_gpu["K80"] == [1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32]  # the 2016 and 2018 tables
    assert by_gpu["M40"] == by_gpu["M60"] == by_gpu["P100-SXM2-16GB"] == [1, 2, 4, 8, 16, 32]
    v100 = {c.batch: c.measured for c in cases if c.gpu == "V100-SXM2-16GB" and c.model == "resnet50"}
    assert v100[128] == 363.69 and v100[1] == 34.54
    # MXNet outside NVIDIA's containers updates each weight with its own kernel
    assert {c.workload.get("optimizer_kernels") for c in cases} == {"per_tensor"}


def test_geforce_ada_runs_fp32_accumulate_mmas_at_half_width_and_has_no_peer_to_peer():
    # AD102 SM: 1024 dense fp16 tensor FLOP per clock with fp16 accumulate, half that with
    # fp32 accumulate on GeForce: 128 x 512 x 2.52 GHz = 165.2 TFLOPS, twice the fp32 rate.
    from simulator.collectives.backend import get_backend
    from simulator.collectives.cost import _arch_key
    from simulator.compute import TENSOR_CORE_ARCHITECTURES, default_compute_efficiency

    rtx = get_gpu("RTX-4090")
    assert rtx.architecture == "Ada" and rtx.flops_per_sm_clock("fp16") == pytest.approx(512, rel=0.01)
    assert rtx.peak_flops("amp") == pytest.approx(128 * 512 * 2520e6, abs=0.05e12)
    assert rtx.peak_flops("tf32") == rtx.peak_flops("fp32")
    assert rtx.pcie_p2p is False and rtx.nvlink_gbytes_s is None
    assert "Ada" in TENSOR_CORE_ARCHITECTURES and default_compute_efficiency("amp", "Ada") == 0.5
    # NCCL's tuning indexes compute capability 8.9 as Ampere: Ada reads Ampere's entries of
    # the backend's architecture-keyed tables (here its NVSwitch channel count, 24)
    nccl = get_backend("nccl")
    assert _arch_key("Ada", nccl.nvswitch_channels) == "Ampere" and nccl.nvswitch_channels["Ampere"] == 24
    assert _arch_key("Hopper", nccl.nvswitch_channels) == "Hopper"
