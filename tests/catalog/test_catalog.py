"""Tests for the hardware catalog: presence, sanity ranges and closed-form figures."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from simulator.catalog import (
    GPUS,
    LINKS,
    PRECISIONS,
    TCP_ETHERNET_EFFICIENCY,
    GPUSpec,
    LinkSpec,
    UnsupportedPrecision,
    get_gpu,
    get_link,
    list_gpus,
    list_links,
    match_device_name,
    pcie_link_for_gen,
)
from simulator.errors import ClusterSimError

REQUIRED_GPUS = (
    "K80",
    "P100-PCIe-16GB",
    "P100-SXM2-16GB",
    "V100-PCIe-16GB",
    "V100-SXM2-16GB",
    "V100-SXM2-32GB",
    "A100-PCIe-40GB",
    "A100-SXM4-40GB",
    "A100-SXM4-80GB",
    "H100-SXM5-80GB",
    "M40",
    "TitanX-Maxwell",
    "TitanX-Pascal",
    "GTX-1080Ti",
    "RTX-2080Ti",
)
REQUIRED_LINKS = (
    "pcie3x16",
    "pcie4x16",
    "pcie5x16",
    "1GbE",
    "10GbE",
    "25GbE",
    "40GbE",
    "100GbE",
    "IB-FDR",
    "IB-EDR",
    "IB-HDR",
)
PRE_AMPERE = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing")
PCIE3_X16_GBPS = 8e9 * 16 * 128 / 130 / 1e9


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# --- presence and sanity ---------------------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED_GPUS)
def test_required_gpu_present(name: str) -> None:
    spec = get_gpu(name)
    assert spec.name == name
    assert name in list_gpus()


@pytest.mark.parametrize("name", REQUIRED_LINKS)
def test_required_link_present(name: str) -> None:
    assert get_link(name).name == name
    assert name in list_links()


def test_listings_match_mappings() -> None:
    assert list_gpus() == sorted(GPUS)
    assert list_links() == sorted(LINKS)
    assert all(GPUS[n].name == n for n in GPUS)
    assert all(LINKS[n].name == n for n in LINKS)


@pytest.mark.parametrize("spec", list(GPUS.values()), ids=list(GPUS))
def test_gpu_entry_sane(spec: GPUSpec) -> None:
    assert spec.source.strip()
    assert spec.notes.strip()
    assert 2012 <= spec.year <= 2025
    assert 6 <= spec.memory_gib <= 200  # the GTX Titan Black's 6 GB is the smallest
    assert 150 <= spec.memory_bandwidth_gbytes_s <= 6000  # one GPU of an M60 board: 160 GB/s
    assert spec.pcie_gen in (3, 4, 5)
    assert spec.nvlink_gbytes_s is None or 50 <= spec.nvlink_gbytes_s <= 500
    fp32 = spec.peak_tflops["fp32"]
    assert 3 <= fp32 <= 100  # the RTX 4090's 82.6 is the highest
    for precision, tflops in spec.peak_tflops.items():
        assert precision in PRECISIONS and precision != "amp"
        assert tflops > 0
        # Reduced precisions are never slower than fp32, at most 16x faster (fp8: 32x; an
        # H100's dense fp8 peak is 29.5 times its fp32 peak).
        widest = 32 if precision == "fp8" else 16
        assert fp32 <= tflops <= widest * fp32
        assert tflops <= (2 if precision == "fp8" else 1) * 1000
    # Roofline ridge point (FLOP per byte) at fp32 stays within a plausible band.
    ridge = spec.peak_flops("fp32") / (spec.memory_bandwidth_gbytes_s * 1e9)
    assert 5 <= ridge <= 90  # GA102 (A10) doubled fp32 reaches 52, AD102 (RTX 4090) 82


@pytest.mark.parametrize("spec", list(LINKS.values()), ids=list(LINKS))
def test_link_entry_sane(spec: LinkSpec) -> None:
    assert spec.source.strip()
    assert spec.notes.strip()
    assert spec.kind in ("pcie", "ethernet", "infiniband", "nvlink")
    assert 0.5 <= spec.efficiency <= 1.0
    assert 0.1 <= spec.latency_us <= 100
    assert spec.effective_gbps == pytest.approx(spec.line_rate_gbps * spec.efficiency)
    assert spec.bandwidth_bytes_per_s == pytest.approx(spec.effective_gbps * 1e9 / 8)


def test_pcie_and_infiniband_faster_than_same_rate_ethernet_latency() -> None:
    assert get_link("IB-EDR").latency_us < 5 < get_link("10GbE").latency_us
    assert get_link("pcie3x16").latency_us <= 2


# --- closed-form link figures ----------------------------------------------------------


def test_pcie_gen3_line_rate_closed_form() -> None:
    assert rel(get_link("pcie3x16").line_rate_gbps, PCIE3_X16_GBPS) < 1e-3
    assert get_link("pcie3x16").line_rate_gbps == pytest.approx(126.03, abs=0.01)


def test_pcie_generations_double() -> None:
    g3 = get_link("pcie3x16").line_rate_gbps
    assert rel(get_link("pcie4x16").line_rate_gbps, 2 * g3) < 1e-3
    assert rel(get_link("pcie5x16").line_rate_gbps, 4 * g3) < 1e-3


def test_pcie3_bytes_per_second() -> None:
    link = get_link("pcie3x16")
    # 15.75 GB/s raw x 0.80 = 12.6 GB/s, the pinned cudaMemcpy figure.
    assert link.bandwidth_bytes_per_s == pytest.approx(15.754e9 * link.efficiency, rel=1e-3)
    assert 11e9 <= link.bandwidth_bytes_per_s <= 14e9


@pytest.mark.parametrize("gen", [3, 4, 5])
def test_pcie_link_for_gen(gen: int) -> None:
    assert pcie_link_for_gen(gen) is LINKS[f"pcie{gen}x16"]


@pytest.mark.parametrize("gen", [1, 2, 6])
def test_pcie_link_for_unknown_gen(gen: int) -> None:
    with pytest.raises(KeyError, match=f"unknown link 'pcie{gen}x16'"):
        pcie_link_for_gen(gen)


@pytest.mark.parametrize(
    ("name", "gbps"),
    [("1GbE", 1), ("10GbE", 10), ("25GbE", 25), ("40GbE", 40), ("100GbE", 100)],
)
def test_ethernet_rates(name: str, gbps: float) -> None:
    link = get_link(name)
    assert link.kind == "ethernet"
    assert link.line_rate_gbps == pytest.approx(gbps)
    assert link.efficiency == pytest.approx(TCP_ETHERNET_EFFICIENCY)


def test_tcp_efficiency_is_mtu_1500_framing() -> None:
    assert TCP_ETHERNET_EFFICIENCY == pytest.approx(1448 / 1538)
    assert TCP_ETHERNET_EFFICIENCY == pytest.approx(0.9415, abs=1e-4)


def test_10gbe_bytes_per_second() -> None:
    link = get_link("10GbE")
    assert link.bandwidth_bytes_per_s == pytest.approx(10e9 * link.efficiency / 8)
    # ~1.18 GB/s of TCP goodput.
    assert link.bandwidth_bytes_per_s == pytest.approx(1.177e9, rel=1e-3)


def test_infiniband_rates() -> None:
    fdr = get_link("IB-FDR")
    assert rel(fdr.line_rate_gbps, 4 * 14.0625 * 64 / 66) < 1e-3
    assert fdr.line_rate_gbps == pytest.approx(54.545, abs=1e-3)
    assert get_link("IB-EDR").line_rate_gbps == pytest.approx(100.0)
    assert get_link("IB-HDR").line_rate_gbps == pytest.approx(200.0)
    assert get_link("IB-NDR").line_rate_gbps == pytest.approx(400.0)
    for name in ("IB-FDR", "IB-EDR", "IB-HDR", "IB-NDR"):
        link = get_link(name)
        assert link.kind == "infiniband"
        assert 0.9 <= link.efficiency < 1.0
        assert link.latency_us <= 2.0
    # EDR RDMA: 100 Gb/s x 0.97 / 8 = 12.125 GB/s.
    assert get_link("IB-EDR").bandwidth_bytes_per_s == pytest.approx(12.125e9)


def test_nvlink_per_link_matches_gpu_totals() -> None:
    # One NVLink 2.0 link is 25 GB/s per direction; V100 SXM2 has six.
    assert get_link("nvlink2").line_rate_gbps / 8 == pytest.approx(25.0)
    assert get_gpu("V100-SXM2-16GB").nvlink_gbytes_s == pytest.approx(6 * 25.0)
    assert get_gpu("A100-SXM4-40GB").nvlink_gbytes_s == pytest.approx(
        12 * get_link("nvlink3").line_rate_gbps / 8
    )
    assert get_gpu("H100-SXM5-80GB").nvlink_gbytes_s == pytest.approx(
        18 * get_link("nvlink4").line_rate_gbps / 8
    )
    assert get_gpu("P100-SXM2-16GB").nvlink_gbytes_s == pytest.approx(
        4 * get_link("nvlink1").line_rate_gbps / 8
    )


def test_transfer_time() -> None:
    link = get_link("IB-EDR")
    assert link.transfer_time_s(0) == pytest.approx(link.latency_us * 1e-6)
    assert link.transfer_time_s(12.125e9) == pytest.approx(1.0 + link.latency_us * 1e-6)
    with pytest.raises(ValueError, match="link 'IB-EDR': cannot transfer -1 bytes"):
        link.transfer_time_s(-1)


# --- GPU figures -----------------------------------------------------------------------


def test_amp_is_fp16_everywhere() -> None:
    for spec in GPUS.values():
        assert spec.peak_flops("amp") == spec.peak_flops("fp16")


def test_k80_bf16_unsupported_message() -> None:
    k80 = get_gpu("K80")
    with pytest.raises(UnsupportedPrecision, match=r"GPU 'K80' \(Kepler\) does not support precision 'bf16'") as info:
        k80.peak_flops("bf16")
    message = str(info.value)
    assert "K80" in message and "bf16" in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ClusterSimError)


def test_unknown_precision_rejected() -> None:
    with pytest.raises(UnsupportedPrecision, match="int8"):
        get_gpu("A100-SXM4-40GB").peak_flops("int8")


@pytest.mark.parametrize("spec", list(GPUS.values()), ids=list(GPUS))
def test_bf16_tf32_only_from_ampere(spec: GPUSpec) -> None:
    pre_ampere = spec.architecture in PRE_AMPERE
    for precision in ("bf16", "tf32"):
        assert spec.supports(precision) is (not pre_ampere)
        if pre_ampere:
            with pytest.raises(UnsupportedPrecision, match=precision):
                spec.peak_flops(precision)
    assert spec.supports("fp32") and spec.supports("fp16") and spec.supports("amp")


def test_v100_tensor_is_8x_fp32() -> None:
    for name in ("V100-SXM2-16GB", "V100-SXM2-32GB", "V100-PCIe-16GB"):
        v100 = get_gpu(name)
        assert rel(v100.peak_flops("fp16") / v100.peak_flops("fp32"), 8.0) < 0.05
    sxm2 = get_gpu("V100-SXM2-16GB")
    assert sxm2.peak_flops("fp32") == pytest.approx(15.7e12)
    assert sxm2.peak_flops("fp16") == pytest.approx(125e12)


def test_a100_tf32_is_8x_fp32() -> None:
    for name in ("A100-PCIe-40GB", "A100-SXM4-40GB", "A100-SXM4-80GB"):
        a100 = get_gpu(name)
        assert a100.peak_flops("tf32") == pytest.approx(8 * a100.peak_flops("fp32"))
        assert a100.peak_flops("bf16") == a100.peak_flops("fp16") == pytest.approx(312e12)


def test_h100_dense_figures() -> None:
    h100 = get_gpu("H100-SXM5-80GB")
    assert h100.peak_flops("fp32") == pytest.approx(67e12)
    assert h100.peak_flops("tf32") == pytest.approx(495e12, rel=0.01)
    assert h100.peak_flops("bf16") == pytest.approx(989e12, rel=0.01)
    assert h100.memory_bandwidth_gbytes_s == pytest.approx(3350)


def test_k80_is_one_die() -> None:
    k80 = get_gpu("K80")
    assert k80.memory_gib == 12
    assert k80.memory_bandwidth_gbytes_s == 240
    # Half the board's 8.73 TFLOPS boost figure.
    assert k80.peak_flops("fp32") == pytest.approx(8.73e12 / 2, rel=0.01)
    assert k80.peak_flops("fp16") == k80.peak_flops("fp32")


def test_fp16_without_fast_half_uses_fp32_rate() -> None:
    for name in ("K80", "M40", "M60", "TitanX-Maxwell", "TitanX-Pascal", "GTX-1080Ti"):
        spec = get_gpu(name)
        assert spec.peak_flops("fp16") == spec.peak_flops("fp32")
    for name in ("P100-PCIe-16GB", "P100-SXM2-16GB"):
        p100 = get_gpu(name)
        assert rel(p100.peak_flops("fp16"), 2 * p100.peak_flops("fp32")) < 0.01


@pytest.mark.parametrize(
    ("name", "fp32", "bandwidth", "memory"),
    [
        ("P100-PCIe-16GB", 9.3, 732, 16),
        ("P100-SXM2-16GB", 10.6, 732, 16),
        ("V100-PCIe-16GB", 14.0, 900, 16),
        ("V100-SXM2-32GB", 15.7, 900, 32),
        ("A100-SXM4-40GB", 19.5, 1555, 40),
        ("A100-SXM4-80GB", 19.5, 2039, 80),
        ("M40", 7.0, 288, 24),
        ("M60", 4.825, 160.4, 8),
        ("TitanX-Maxwell", 6.6, 336.5, 12),
        ("GTX-Titan-Black", 5.645, 336, 6),
        ("TitanX-Pascal", 11.0, 480, 12),
        ("GTX-1080Ti", 11.3, 484, 11),
        ("RTX-2080Ti", 13.4, 616, 11),
    ],
)
def test_headline_datasheet_figures(
    name: str, fp32: float, bandwidth: float, memory: float
) -> None:
    spec = get_gpu(name)
    assert spec.peak_flops("fp32") == pytest.approx(fp32 * 1e12)
    assert spec.memory_bandwidth_gbytes_s == pytest.approx(bandwidth)
    assert spec.memory_gib == pytest.approx(memory)


def test_rtx2080ti_tensor_fp32_accumulate_is_half_rate() -> None:
    rtx = get_gpu("RTX-2080Ti")
    # 107.6 TFLOPS fp16-accumulate tensor peak, halved on GeForce for fp32 accumulate.
    assert rtx.peak_flops("amp") == pytest.approx(107.6e12 / 2)
    assert rtx.peak_flops("amp") == pytest.approx(4 * rtx.peak_flops("fp32"), rel=0.01)


def test_interconnect_fields() -> None:
    for name in ("K80", "V100-PCIe-16GB", "A100-PCIe-40GB", "RTX-2080Ti", "GTX-1080Ti"):
        assert get_gpu(name).nvlink_gbytes_s is None
    assert get_gpu("V100-SXM2-16GB").pcie_gen == 3
    assert get_gpu("A100-SXM4-80GB").pcie_gen == 4
    assert get_gpu("H100-SXM5-80GB").pcie_gen == 5
    assert pcie_link_for_gen(get_gpu("A100-PCIe-40GB").pcie_gen).name == "pcie4x16"


# --- lookup errors and immutability -----------------------------------------------------


def test_unknown_names_raise_keyerror() -> None:
    with pytest.raises(KeyError, match="unknown GPU 'nope'; known GPUs: "):
        get_gpu("nope")
    with pytest.raises(KeyError, match="unknown link 'nope'; known links: "):
        get_link("nope")


def test_catalog_is_read_only() -> None:
    spec = get_gpu("V100-SXM2-16GB")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'memory_gib'"):
        spec.memory_gib = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="does not support item assignment"):
        spec.peak_tflops["bf16"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError, match="does not support item assignment"):
        GPUS["x"] = spec  # type: ignore[index]
    with pytest.raises(TypeError, match="does not support item assignment"):
        LINKS["x"] = get_link("10GbE")  # type: ignore[index]
    assert hash(spec) == hash(get_gpu("V100-SXM2-16GB"))


def test_spec_validation() -> None:
    good = dict(
        name="X",
        architecture="Volta",
        year=2017,
        peak_tflops={"fp32": 1.0},
        memory_gib=1.0,
        memory_bandwidth_gbytes_s=1.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="doc",
    )
    GPUSpec(**good)
    for bad, message in (
        ({"peak_tflops": {"fp32": 1.0, "amp": 2.0}}, "unknown precision key(s) ['amp']"),
        ({"peak_tflops": {"fp16": 1.0}}, "peak_tflops must include 'fp32'"),
        ({"peak_tflops": {"fp32": -1.0}}, "peak fp32 TFLOPS must be positive, got -1.0"),
        ({"pcie_gen": 2}, "pcie_gen must be 3, 4 or 5, got 2"),
        ({"source": " "}, "every entry needs a source"),
        ({"architecture": "Blackwell"}, "unknown architecture 'Blackwell'"),
        ({"memory_gib": 0.0}, "memory_gib must be positive"),
        ({"matmul_efficiency": 1.2, "matmul_source": "doc"}, "matmul_efficiency must be in [0.3, 1], got 1.2"),
        ({"matmul_efficiency": 0.8}, "a matmul_efficiency needs a matmul_source"),
    ):
        with pytest.raises(ValueError, match=re.escape(f"GPU 'X': {message}")):
            GPUSpec(**{**good, **bad})
    # A custom card without fp16 cannot run AMP, and says so.
    with pytest.raises(UnsupportedPrecision, match="amp"):
        GPUSpec(**good).peak_flops("amp")
    with pytest.raises(ValueError, match=re.escape("link 'l': efficiency must be in (0, 1], got 1.5")):
        LinkSpec("l", "pcie", 1.0, 1.5, 1.0, "doc")
    with pytest.raises(ValueError, match=r"link 'l': kind must be one of \[.*\], got 'carrier-pigeon'"):
        LinkSpec("l", "carrier-pigeon", 1.0, 0.5, 1.0, "doc")
    half_rate = LinkSpec("l", "pcie", 8.0, 0.5, 1.0, "doc")
    assert math.isclose(half_rate.bandwidth_bytes_per_s, 5e8)


@pytest.mark.parametrize("name,gbps", [("25GbE-RoCE", 25), ("40GbE-RoCE", 40), ("100GbE-RoCE", 100),
                                       ("200GbE-RoCE", 200)])
def test_roce_is_rdma_framing_and_latency_over_ethernet(name: str, gbps: float) -> None:
    # RoCE v2 at a 4096-byte RDMA MTU: 62 bytes of headers (BTH 12, UDP 8, IPv4 20,
    # Ethernet 14, FCS 4, ICRC 4) and 20 of preamble and gap per frame; verbs latency,
    # not the kernel TCP stack's.
    link = get_link(name)
    assert (link.kind, link.line_rate_gbps) == ("ethernet", gbps)
    assert link.efficiency == pytest.approx(4096 / 4178, rel=1e-12)
    assert link.efficiency > TCP_ETHERNET_EFFICIENCY
    assert link.latency_us == 2.0 < get_link("25GbE").latency_us / 5
    assert link.bandwidth_bytes_per_s == pytest.approx(gbps * 1e9 / 8 * 4096 / 4178, rel=1e-12)


@pytest.mark.parametrize(("device_name", "gpu"), [
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-PCIe-40GB"),
    ("Tesla V100-SXM2-16GB", "V100-SXM2-16GB"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"),  # the SXM5's own name ties SXM5 and PCIe on words alone
    ("NVIDIA H100 PCIe", "H100-PCIe-80GB"),
    ("NVIDIA GeForce RTX 4090", "RTX-4090"),
    ("NVIDIA GeForce RTX 4080", None),
    # a variant word names another card: a 1080 Ti is not a 1080, a 3080 Ti or laptop 3080 no 3080
    ("NVIDIA GeForce GTX 1080 Ti", "GTX-1080Ti"),
    ("NVIDIA GeForce GTX 1080", "GTX-1080"),
    ("NVIDIA GeForce RTX 2080 Ti", "RTX-2080Ti"),
    ("NVIDIA GeForce RTX 3080", "RTX-3080"),
    ("NVIDIA GeForce RTX 3080 Ti", None),
    ("NVIDIA GeForce RTX 3080 Laptop GPU", None),
    ("NVIDIA RTX A6000", "RTX-A6000"),
    ("Quadro RTX 8000", "Quadro-RTX-8000"),
])
def test_cuda_device_names_map_to_catalog_gpus(device_name, gpu):
    assert match_device_name(device_name) == gpu
