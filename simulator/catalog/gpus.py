"""GPU datasheet figures used for roofline compute estimates.

Every :class:`GPUSpec` carries the dense (no structured sparsity) peak throughput per
precision, the memory size and bandwidth, the host interface and the NVLink bandwidth,
each with the document it comes from.  Conventions:

* ``peak_tflops`` holds *dense* peaks.  Where a card has tensor cores, the fp16/bf16/tf32
  figures are the tensor-core peak with fp32 accumulation (what cuBLAS/cuDNN use for AMP),
  not the sparse "up to" figure printed first on Ampere/Hopper datasheets.
* ``fp16`` is what a framework actually gets for half-precision training.  Kepler and
  Maxwell have no fast fp16 and consumer Pascal (GP102) runs native fp16 at 1/64 rate, so
  frameworks store fp16 but compute in fp32: for those cards ``fp16`` equals ``fp32``.
  P100 (GP100) has packed fp16 at 2x the fp32 rate.
* A missing key means the precision is not supported (no ``bf16``/``tf32`` before Ampere);
  asking for it raises :class:`UnsupportedPrecision`.
* ``memory_gib`` is the capacity NVIDIA quotes as "GB", which for these HBM/GDDR parts is
  a binary size (16 GB HBM2 is 16 GiB before ECC and driver reservations).
* ``nvlink_gbytes_s`` is the per-GPU NVLink total in one direction (the datasheet's
  bidirectional figure halved).  Cards whose NVLink exists only through an optional
  two-card bridge (A100/H100 PCIe, RTX 2080 Ti, RTX 3090) carry ``None``; the bridge is
  mentioned in ``notes`` and a topology that has one should add an NVLink link itself.

``notes`` says for each entry which figures were cross-checked with a public secondary
source and which are "from memory of NVIDIA datasheet".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from simulator.errors import ClusterSimError

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "amp")

# Precisions that may appear as keys of ``peak_tflops``; "amp" is an alias of fp16.
_STORED_PRECISIONS = frozenset(PRECISIONS) - {"amp"}
_ARCHITECTURES = frozenset(
    {"Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Hopper"}
)


class UnsupportedPrecision(ClusterSimError, ValueError):
    """A GPU was asked for a precision it does not support (or an unknown precision)."""


@dataclass(frozen=True)
class GPUSpec:
    """Datasheet figures for one GPU (one device as CUDA frameworks count it)."""

    name: str
    architecture: str
    year: int
    peak_tflops: Mapping[str, float] = field(hash=False)
    memory_gib: float
    memory_bandwidth_gbytes_s: float
    pcie_gen: int
    nvlink_gbytes_s: float | None
    source: str
    notes: str = ""
    # Streaming multiprocessors of one device: the unit a GEMM's tiles are spread
    # over (wave quantization). From NVIDIA's architecture whitepapers (GK210 13 SMX,
    # GM200 24, GP100 56, GP102 28, GV100 80, TU102 68, TU104 in T4 40, GA100 108,
    # GA102 82 in the 3090 / 72 in the A10, GH100 132 SXM / 114 PCIe).
    sm_count: int | None = None
    # Clock a card holds under sustained training load over the clock its peak
    # figures are quoted at. GeForce cards' GPU Boost runs well above the rated boost
    # when power and temperature allow; 1.0 where no measurement is recorded.
    sustained_clock_ratio: float = 1.0
    clock_source: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("GPUSpec needs a name")
        if self.architecture not in _ARCHITECTURES:
            raise ValueError(
                f"GPU {self.name!r}: unknown architecture {self.architecture!r}"
            )
        unknown = set(self.peak_tflops) - _STORED_PRECISIONS
        if unknown:
            raise ValueError(
                f"GPU {self.name!r}: unknown precision key(s) {sorted(unknown)}; "
                f"expected among {sorted(_STORED_PRECISIONS)}"
            )
        if "fp32" not in self.peak_tflops:
            raise ValueError(f"GPU {self.name!r}: peak_tflops must include 'fp32'")
        for precision, tflops in self.peak_tflops.items():
            if not tflops > 0:
                raise ValueError(
                    f"GPU {self.name!r}: peak {precision} TFLOPS must be positive, "
                    f"got {tflops!r}"
                )
        for label, value in (
            ("memory_gib", self.memory_gib),
            ("memory_bandwidth_gbytes_s", self.memory_bandwidth_gbytes_s),
        ):
            if not value > 0:
                raise ValueError(f"GPU {self.name!r}: {label} must be positive")
        if self.pcie_gen not in (3, 4, 5):
            raise ValueError(
                f"GPU {self.name!r}: pcie_gen must be 3, 4 or 5, got {self.pcie_gen!r}"
            )
        if self.nvlink_gbytes_s is not None and not self.nvlink_gbytes_s > 0:
            raise ValueError(f"GPU {self.name!r}: nvlink_gbytes_s must be positive or None")
        if self.sm_count is not None and not (isinstance(self.sm_count, int) and self.sm_count >= 1):
            raise ValueError(f"GPU {self.name!r}: sm_count must be a positive int or None, got {self.sm_count!r}")
        if not 0.3 <= self.sustained_clock_ratio <= 2.0:
            raise ValueError(f"GPU {self.name!r}: sustained_clock_ratio must be in [0.3, 2], "
                             f"got {self.sustained_clock_ratio!r}")
        if self.sustained_clock_ratio != 1.0 and not self.clock_source.strip():
            raise ValueError(f"GPU {self.name!r}: a sustained_clock_ratio needs a clock_source")
        if not self.source.strip():
            raise ValueError(f"GPU {self.name!r}: every entry needs a source")
        # Freeze the mapping so a shared catalog entry cannot be mutated by a caller.
        object.__setattr__(
            self, "peak_tflops", MappingProxyType(dict(self.peak_tflops))
        )

    def supports(self, precision: str) -> bool:
        """Whether :meth:`peak_flops` would succeed for ``precision``."""
        key = "fp16" if precision == "amp" else precision
        return key in self.peak_tflops

    def peak_flops(self, precision: str) -> float:
        """Dense peak in FLOP/s for ``precision``; ``"amp"`` means the fp16 peak.

        Raises :class:`UnsupportedPrecision` (a ``ValueError``) naming the GPU and the
        precision when the card has no such mode or the name is not a known precision.
        """
        if precision not in PRECISIONS:
            raise UnsupportedPrecision(
                f"GPU {self.name!r}: unknown precision {precision!r}; "
                f"expected one of {', '.join(PRECISIONS)}"
            )
        key = "fp16" if precision == "amp" else precision
        try:
            tflops = self.peak_tflops[key]
        except KeyError:
            supported = ", ".join(p for p in PRECISIONS if self.supports(p))
            raise UnsupportedPrecision(
                f"GPU {self.name!r} ({self.architecture}) does not support precision "
                f"{precision!r}; supported: {supported}"
            ) from None
        return tflops * 1e12


_FROM_MEMORY = "from memory of NVIDIA datasheet"

_SPECS: tuple[GPUSpec, ...] = (
    GPUSpec(
        name="K80",
        architecture="Kepler",
        year=2014,
        sm_count=13,
        # One GK210 die: 2496 cores x 2 FLOP x 875 MHz boost = 4.37 TFLOPS (board 8.73).
        peak_tflops={"fp32": 4.37, "fp16": 4.37},
        memory_gib=12.0,
        memory_bandwidth_gbytes_s=240.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA Tesla K80 GPU Accelerator datasheet / board specification "
        "(BD-07317-001): 2x GK210, 8.73 TFLOPS fp32 at boost, 2x 12 GB, 480 GB/s",
        notes="ONE GK210 die as CUDA frameworks count it (nvidia-smi lists two devices "
        "per board): half the board figures, fp32 at the 875 MHz boost clock "
        "(base 562 MHz gives 2.8 per die / 5.6 board). The 2.91 TFLOPS in the datasheet "
        "is the board's fp64 at boost, not fp32 at base. No fast fp16: fp16 = fp32 rate. "
        "Both dies share one gen3 x16 slot behind an on-board PCIe switch. "
        "Verified (search): 8.74 TFLOPS SP board, 2x12 GB, 2x384-bit 5 GHz GDDR5, "
        "240 GB/s per GPU (AnandTech/ComputerBase launch coverage).",
    ),
    GPUSpec(
        name="M40",
        architecture="Maxwell",
        year=2015,
        sm_count=24,
        peak_tflops={"fp32": 7.0, "fp16": 7.0},
        memory_gib=24.0,
        memory_bandwidth_gbytes_s=288.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA Tesla M40 24GB GPU Accelerator datasheet: 7 TFLOPS fp32, "
        "24 GB GDDR5, 288 GB/s",
        notes="24 GB variant (the 12 GB launch card has identical compute and bandwidth). "
        "Year is the M40 launch; the 24 GB board followed in 2016. 7.0 is NVIDIA's "
        "rounded figure (3072 x 2 x 1.114 GHz = 6.84). No fast fp16: fp16 = fp32 rate. "
        "Verified (search): 7.0 TFLOPS single, 24 GB, up to 288 GB/s (Microway M40 24GB "
        "write-up).",
    ),
    GPUSpec(
        name="TitanX-Maxwell",
        architecture="Maxwell",
        year=2015,
        sm_count=24,
        # 3072 cores x 2 x 1075 MHz boost = 6.6 TFLOPS.
        peak_tflops={"fp32": 6.6, "fp16": 6.6},
        memory_gib=12.0,
        memory_bandwidth_gbytes_s=336.5,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA GeForce GTX TITAN X (GM200) product specifications: 3072 CUDA "
        "cores, 1000/1075 MHz, 12 GB GDDR5 7 Gbps 384-bit, 336.5 GB/s",
        notes="fp32 computed at the 1075 MHz boost clock (NVIDIA marketing rounds to "
        "'7 TFLOPS'). No fast fp16: fp16 = fp32 rate. Verified (search): 3072 cores, "
        "1075 MHz boost, 12288 MB, 336.5 GB/s (HotHardware review spec table).",
    ),
    GPUSpec(
        name="P100-PCIe-16GB",
        architecture="Pascal",
        year=2016,
        sm_count=56,
        peak_tflops={"fp32": 9.3, "fp16": 18.7},
        memory_gib=16.0,
        memory_bandwidth_gbytes_s=732.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA Tesla P100 PCIe datasheet: 9.3 TFLOPS fp32, 18.7 TFLOPS fp16, "
        "16 GB CoWoS HBM2 at 732 GB/s",
        notes="GP100 has packed fp16 at 2x fp32. Verified (search): 9.3 fp32 / 18.7 fp16 "
        "for the PCIe card (launch coverage). Launch articles quote 720 GB/s (1.4 Gbps "
        "HBM2); the later datasheet quotes 732 GB/s, which is used here "
        "(732 is from memory of NVIDIA datasheet).",
    ),
    GPUSpec(
        name="P100-SXM2-16GB",
        architecture="Pascal",
        year=2016,
        sm_count=56,
        peak_tflops={"fp32": 10.6, "fp16": 21.2},
        memory_gib=16.0,
        memory_bandwidth_gbytes_s=732.0,
        pcie_gen=3,
        nvlink_gbytes_s=80.0,
        source="NVIDIA Tesla P100 (SXM2/NVLink) datasheet and Pascal GP100 architecture "
        "whitepaper: 10.6 fp32, 21.2 fp16, 732 GB/s, NVLink 160 GB/s bidirectional",
        notes="NVLink 1.0: 4 links x 20 GB/s per direction = 80 GB/s one way (160 GB/s "
        "bidirectional). Verified (search): 10.6 fp32 / 21.2 fp16 / 5.3 fp64 and "
        "160 GB/s NVLink (HotHardware, launch coverage). 732 GB/s as for the PCIe card "
        "(launch figure 720).",
    ),
    GPUSpec(
        name="TitanX-Pascal",
        architecture="Pascal",
        year=2016,
        sm_count=28,
        # 3584 cores x 2 x 1531 MHz boost = 10.97 TFLOPS.
        peak_tflops={"fp32": 11.0, "fp16": 11.0},
        memory_gib=12.0,
        memory_bandwidth_gbytes_s=480.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA TITAN X (Pascal, GP102) announcement specifications: 3584 CUDA "
        "cores, 1531 MHz boost, 11 TFLOPS fp32, 12 GB GDDR5X 384-bit, 480 GB/s",
        notes="fp16: GP102's native fp16 runs at 1/64 of fp32, so frameworks keep fp16 "
        "storage with fp32 math; fp16 is therefore recorded at the fp32 rate. "
        "Verified (search): 3584 cores, 1.53 GHz, 11 TFLOPS, 12 GB, 480 GB/s (launch "
        "coverage).",
    ),
    GPUSpec(
        name="GTX-1080Ti",
        architecture="Pascal",
        year=2017,
        sm_count=28,
        sustained_clock_ratio=1.12,
        clock_source="Tom's Hardware, KFA2/Galax GTX 1080 Ti EXOC review: 1772 MHz average over a 30-minute "
        "loop, 'below average for a GTX 1080 Ti'; peaks here are at the 1582 MHz rated boost (1772 / 1582 = 1.12)",
        # 3584 cores x 2 x 1582 MHz boost = 11.34 TFLOPS.
        peak_tflops={"fp32": 11.3, "fp16": 11.3},
        memory_gib=11.0,
        memory_bandwidth_gbytes_s=484.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA GeForce GTX 1080 Ti product specifications: 3584 CUDA cores, "
        "1582 MHz boost, 11 GB GDDR5X 11 Gbps 352-bit, 484 GB/s",
        notes="fp16 at fp32 rate for the same GP102 reason as TitanX-Pascal (a public "
        "PyTorch micro-benchmark measured fp16 Linear no faster than fp32 on this card). "
        "Verified (search): 3584 cores, 11 GB, 352-bit, 484 GB/s. The 1582 MHz boost "
        "and the 11.3 TFLOPS product are from memory of NVIDIA datasheet.",
    ),
    GPUSpec(
        name="V100-PCIe-16GB",
        architecture="Volta",
        year=2017,
        sm_count=80,
        peak_tflops={"fp32": 14.0, "fp16": 112.0},
        memory_gib=16.0,
        memory_bandwidth_gbytes_s=900.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA Tesla V100 GPU Accelerator datasheet (PCIe column): 14 TFLOPS "
        "fp32, 112 TFLOPS tensor, 16 GB HBM2, 900 GB/s",
        notes="fp16 is the tensor-core peak (fp16 multiply, fp32 accumulate). "
        "14 / 112 and 900 GB/s are " + _FROM_MEMORY + " (only the SXM2 compute "
        "figures were cross-checked by search).",
    ),
    GPUSpec(
        name="V100-SXM2-16GB",
        architecture="Volta",
        year=2017,
        sm_count=80,
        peak_tflops={"fp32": 15.7, "fp16": 125.0},
        memory_gib=16.0,
        memory_bandwidth_gbytes_s=900.0,
        pcie_gen=3,
        nvlink_gbytes_s=150.0,
        source="NVIDIA Tesla V100 GPU Accelerator datasheet (SXM2 column) and Volta "
        "GV100 architecture whitepaper: 15.7 fp32, 125 tensor TFLOPS, 900 GB/s, "
        "NVLink 300 GB/s",
        notes="fp32 = 5120 x 2 x 1.53 GHz. fp16 is the tensor-core peak with fp32 "
        "accumulate (8x fp32). NVLink 2.0: 6 links x 25 GB/s per direction = 150 one "
        "way (300 bidirectional). Verified (search): 15.7 fp32 (Cornell Virtual "
        "Workshop), 125 tensor TFLOPS (NVIDIA 'Programming Tensor Cores in CUDA 9'). "
        "900 GB/s corroborated by third-party spec tables found by search; the NVLink "
        "figure is from memory of NVIDIA datasheet.",
    ),
    GPUSpec(
        name="V100-SXM2-32GB",
        architecture="Volta",
        year=2018,
        sm_count=80,
        peak_tflops={"fp32": 15.7, "fp16": 125.0},
        memory_gib=32.0,
        memory_bandwidth_gbytes_s=900.0,
        pcie_gen=3,
        nvlink_gbytes_s=150.0,
        source="NVIDIA Tesla V100 GPU Accelerator datasheet (32 GB SXM2): same compute "
        "and 900 GB/s as the 16 GB part",
        notes="Identical to V100-SXM2-16GB except memory capacity. Verified (search): "
        "up to 32 GB HBM2, 15.7 fp32, 125 tensor TFLOPS.",
    ),
    GPUSpec(
        name="RTX-2080Ti",
        architecture="Turing",
        year=2018,
        sm_count=68,
        sustained_clock_ratio=1.18,
        clock_source="TechPowerUp, MSI RTX 2080 Ti Gaming X Trio review: the Founders Edition averaged "
        "1824 MHz over their test suite; peaks here are at the 1545 MHz reference boost (1824 / 1545 = 1.18)",
        peak_tflops={"fp32": 13.4, "fp16": 53.8},
        memory_gib=11.0,
        memory_bandwidth_gbytes_s=616.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA Turing GPU Architecture whitepaper, GeForce RTX 2080 Ti "
        "(reference clocks, 1545 MHz boost): 13.4 fp32, 26.9 fp16 (non-tensor), "
        "107.6 fp16 tensor w/ fp16 accumulate, 53.8 w/ fp32 accumulate; 11 GB GDDR6 "
        "14 Gbps 352-bit, 616 GB/s",
        notes="fp16 = tensor-core peak with fp32 accumulate, which GeForce Turing runs at "
        "HALF the fp16-accumulate rate (107.6 -> 53.8); AMP GEMMs accumulate in fp32, "
        "so 53.8 is the relevant ceiling. 26.9 is the non-tensor packed-fp16 rate "
        "(2x fp32), not the tensor peak: a public PyTorch micro-benchmark measured "
        "53.4 TFLOPS fp16 Linear on a 2080 Ti, which 26.9 could not allow. "
        "Founders Edition (1635 MHz) figures are 14.2 / 56.9. NVLink only through an "
        "optional 2-card bridge (50 GB/s per direction), hence None. Verified "
        "(search): 13.45 fp32, 26.9 non-tensor fp16, 616 GB/s, 11 GB. The 53.8/107.6 "
        "tensor figures are from memory of the NVIDIA Turing whitepaper.",
    ),
    GPUSpec(
        name="T4",
        architecture="Turing",
        year=2018,
        sm_count=40,
        peak_tflops={"fp32": 8.1, "fp16": 65.0},
        memory_gib=16.0,
        memory_bandwidth_gbytes_s=320.0,
        pcie_gen=3,
        nvlink_gbytes_s=None,
        source="NVIDIA T4 Tensor Core GPU datasheet: 8.1 TFLOPS fp32, 65 TFLOPS "
        "mixed precision (fp16/fp32), 16 GB GDDR6, 320+ GB/s, 70 W",
        notes="Data-centre Turing: fp16 tensor with fp32 accumulate runs at full rate "
        "(65 = 8x fp32). Verified (search): 2560 cores / 320 tensor cores, 8.1 fp32, "
        "65 fp16 mixed, 16 GB GDDR6 256-bit 10 Gbps = 320 GB/s.",
    ),
    GPUSpec(
        name="A100-PCIe-40GB",
        architecture="Ampere",
        year=2020,
        sm_count=108,
        peak_tflops={"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
        memory_gib=40.0,
        memory_bandwidth_gbytes_s=1555.0,
        pcie_gen=4,
        nvlink_gbytes_s=None,
        source="NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-"
        "1758950-r4-web.pdf) and NVIDIA A100 Tensor Core GPU Architecture whitepaper",
        notes="Dense tensor peaks (datasheet prints 312/624 with sparsity). Same peak "
        "figures as SXM4 but a 250 W limit, so sustained clocks run lower. NVLink only "
        "through an optional bridge pairing two cards (600 GB/s bidirectional), hence "
        "None. Verified (search): 19.5 / 156 / 312 / 312, 1555 GB/s for the 40 GB part.",
    ),
    GPUSpec(
        name="A100-SXM4-40GB",
        architecture="Ampere",
        year=2020,
        sm_count=108,
        peak_tflops={"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
        memory_gib=40.0,
        memory_bandwidth_gbytes_s=1555.0,
        pcie_gen=4,
        nvlink_gbytes_s=300.0,
        source="NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-"
        "1758950-r4-web.pdf) and NVIDIA A100 Tensor Core GPU Architecture whitepaper",
        notes="TF32 dense = 8x fp32. NVLink 3.0: 12 links x 25 GB/s per direction = 300 "
        "one way (600 bidirectional). Verified (search): 19.5 / 156 / 312 / 312, "
        "1.555 TB/s, 300+300 GB/s NVLink (Glenn Lockwood's A100 notes citing the "
        "datasheet; Paderborn PC2 system page).",
    ),
    GPUSpec(
        name="A100-SXM4-80GB",
        architecture="Ampere",
        year=2020,
        sm_count=108,
        peak_tflops={"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
        memory_gib=80.0,
        memory_bandwidth_gbytes_s=2039.0,
        pcie_gen=4,
        nvlink_gbytes_s=300.0,
        source="NVIDIA A100 Tensor Core GPU datasheet (80GB SXM column): 2,039 GB/s HBM2e",
        notes="Same compute as the 40 GB part, HBM2e at 2039 GB/s. Verified (search): "
        "80 GB HBM2e, 2.039 TB/s, FLOPS unchanged.",
    ),
    GPUSpec(
        name="RTX-3090",
        architecture="Ampere",
        year=2020,
        sm_count=82,
        peak_tflops={"fp32": 35.6, "tf32": 35.6, "fp16": 71.0, "bf16": 71.0},
        memory_gib=24.0,
        memory_bandwidth_gbytes_s=936.0,
        pcie_gen=4,
        nvlink_gbytes_s=None,
        source="NVIDIA Ampere GA102 GPU Architecture whitepaper, Appendix A (GeForce RTX "
        "3090): 35.6 fp32, 71 fp16/bf16 tensor w/ fp32 accumulate (142 w/ fp16 "
        "accumulate), 35.6 tf32 tensor, 24 GB GDDR6X 19.5 Gbps 384-bit, 936 GB/s",
        notes="GeForce Ampere halves fp32-accumulate tensor throughput, so AMP gets 71 "
        "and TF32 tensor equals the (doubled) fp32 CUDA-core rate. NVLink only through "
        "an optional 2-card bridge (112.5 GB/s bidirectional), hence None. Verified "
        "(search): 35.6 fp32, 142 fp16 tensor (fp16 accumulate), 936 GB/s, 24 GB. "
        "The fp32-accumulate 71 and tf32 35.6 are from memory of the GA102 whitepaper.",
    ),
    GPUSpec(
        name="A10",
        architecture="Ampere",
        year=2021,
        sm_count=72,
        peak_tflops={"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0},
        memory_gib=24.0,
        memory_bandwidth_gbytes_s=600.0,
        pcie_gen=4,
        nvlink_gbytes_s=None,
        source="NVIDIA A10 Tensor Core GPU datasheet: 31.2 TFLOPS fp32, 62.5 tf32 "
        "tensor, 125 bf16/fp16 tensor (dense; 125/250 with sparsity), 24 GB GDDR6, "
        "600 GB/s, 150 W",
        notes="Data-centre GA102: fp32-accumulate tensor at full rate. Verified "
        "(search): 31.24 fp32, 24 GB, 384-bit 12.5 Gbps = 600 GB/s, 125 fp16. "
        "tf32 62.5 is from memory of NVIDIA datasheet.",
    ),
    GPUSpec(
        name="H100-SXM5-80GB",
        architecture="Hopper",
        year=2022,
        sm_count=132,
        peak_tflops={"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
        memory_gib=80.0,
        memory_bandwidth_gbytes_s=3350.0,
        pcie_gen=5,
        nvlink_gbytes_s=450.0,
        source="NVIDIA H100 Tensor Core GPU datasheet (SXM column: 67 fp32, 989 tf32*, "
        "1,979 bf16/fp16* with sparsity, 3.35 TB/s, NVLink 900 GB/s) and NVIDIA H100 "
        "Tensor Core GPU Architecture whitepaper (dense 494.7 / 989.4)",
        notes="Dense = datasheet sparse figure / 2. NVLink 4.0: 18 links x 25 GB/s per "
        "direction = 450 one way (900 bidirectional). Verified (search): 66.9 fp32, "
        "494.7 tf32, 989.4 fp16/bf16 dense, 3.35 TB/s, 900 GB/s NVLink, PCIe gen5 "
        "128 GB/s bidirectional.",
    ),
    GPUSpec(
        name="H100-PCIe-80GB",
        architecture="Hopper",
        year=2022,
        sm_count=114,
        peak_tflops={"fp32": 51.0, "tf32": 378.0, "fp16": 756.5, "bf16": 756.5},
        memory_gib=80.0,
        memory_bandwidth_gbytes_s=2000.0,
        pcie_gen=5,
        nvlink_gbytes_s=None,
        source="NVIDIA H100 Tensor Core GPU datasheet (PCIe column: 51 fp32, 756 tf32*, "
        "1,513 bf16/fp16* with sparsity, 80 GB HBM2e, 2 TB/s)",
        notes="114 SMs, 350 W. Dense = datasheet sparse figure / 2. NVLink only through "
        "an optional bridge (600 GB/s bidirectional), hence None. Verified (search): "
        "51 fp32, 756 tf32* / 1,513 fp16* sparse, 2,000 GB/s, 80 GB HBM2e.",
    ),
    GPUSpec(
        name="H200-SXM-141GB",
        architecture="Hopper",
        year=2024,
        sm_count=132,
        peak_tflops={"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
        memory_gib=141.0,
        memory_bandwidth_gbytes_s=4800.0,
        pcie_gen=5,
        nvlink_gbytes_s=450.0,
        source="NVIDIA H200 Tensor Core GPU datasheet (SXM): same GH100 compute as "
        "H100 SXM, 141 GB HBM3e, 4.8 TB/s, NVLink 900 GB/s",
        notes="Compute identical to H100-SXM5-80GB; only memory differs. NVIDIA quotes "
        "'141 GB', recorded as-is. Verified "
        "(search): 141 GB HBM3e, 4.8 TB/s, 1,979 bf16 (sparse) / 900 GB/s NVLink, "
        "shipping 2024.",
    ),
)

GPUS: Mapping[str, GPUSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def get_gpu(name: str) -> GPUSpec:
    """The catalog entry for ``name``; ``KeyError`` listing known names if absent."""
    try:
        return GPUS[name]
    except KeyError:
        raise KeyError(
            f"unknown GPU {name!r}; known GPUs: {', '.join(list_gpus())}"
        ) from None


def list_gpus() -> list[str]:
    """Names of every catalogued GPU, sorted."""
    return sorted(GPUS)
