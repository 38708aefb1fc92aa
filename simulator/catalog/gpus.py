"""GPU datasheet figures used for roofline compute estimates.

The figures live in ``simulator/data/catalog/gpus.yaml``, one entry per GPU with the
documents it comes from; the file's header states the conventions (dense peaks, what
``fp16`` means on cards without fast half precision, ``memory_gib``, ``nvlink_gbytes_s``).
:class:`GPUSpec` is the pydantic dataclass each entry is validated as when the file is
read: types strictly, unknown keys refused, then the ranges in ``__post_init__``.
A missing ``peak_tflops`` key means the precision is not supported; asking for it raises
:class:`UnsupportedPrecision`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass

from simulator.catalog.datafile import entries_by_name, read_catalog_file
from simulator.errors import ClusterSimError

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "amp", "fp8")

# Precisions that may appear as keys of ``peak_tflops``; "amp" is an alias of fp16.
_STORED_PRECISIONS = frozenset(PRECISIONS) - {"amp"}
_ARCHITECTURES = frozenset(
    {"Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Ada", "Hopper"}
)


class UnsupportedPrecision(ClusterSimError, ValueError):
    """A GPU was asked for a precision it does not support (or an unknown precision)."""


# strict: a figure written as a string in the data file is an error, not a conversion.
@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid"))
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
    # Share of the CUDA cores the SM's warp schedulers can keep busy each clock without
    # dual issue. Kepler's SMX feeds 192 fp32 cores from four schedulers that each issue
    # one 32-wide warp instruction per clock: the last third works only when the
    # scheduler finds a second independent instruction, which matrix kernels rarely do
    # (so Kepler SGEMM tops out near 60% of its peak). 1.0 from Maxwell on (one 32-lane
    # partition per scheduler); needs an ``issue_source`` otherwise.
    cuda_core_issue_share: float = 1.0
    issue_source: str = ""
    # GPU peer-to-peer over PCIe between two of these cards (off: copies staged through
    # host memory); the default of a scenario's ``cluster.server.p2p``.
    pcie_p2p: bool = True
    # Measured maximum achievable dense matrix-multiply rate (bf16) over the datasheet
    # peak: power and clock limits cap it below 1, differently per card (A100 SXM 0.87,
    # H100 SXM 0.80). None where no measurement is recorded; needs a ``matmul_source``.
    matmul_efficiency: float | None = None
    matmul_source: str = ""
    # The clock (MHz) the datasheet's peak figures are quoted at (peak = SMs x FLOP per
    # SM per clock x this clock): with sm_count it gives the tensor cores' width per SM,
    # which sets how much of the peak an implicit-GEMM convolution reaches
    # (kernel_efficiency.conv_staging_factor). None where not recorded.
    peak_clock_mhz: float | None = None

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
        if not 0.3 <= self.cuda_core_issue_share <= 1.0:
            raise ValueError(f"GPU {self.name!r}: cuda_core_issue_share must be in [0.3, 1], "
                             f"got {self.cuda_core_issue_share!r}")
        if self.cuda_core_issue_share != 1.0 and not self.issue_source.strip():
            raise ValueError(f"GPU {self.name!r}: a cuda_core_issue_share needs an issue_source")
        if self.peak_clock_mhz is not None and not 100 <= self.peak_clock_mhz <= 3000:
            raise ValueError(f"GPU {self.name!r}: peak_clock_mhz must be in [100, 3000], "
                             f"got {self.peak_clock_mhz!r}")
        if self.matmul_efficiency is not None:
            if not 0.3 <= self.matmul_efficiency <= 1.0:
                raise ValueError(f"GPU {self.name!r}: matmul_efficiency must be in [0.3, 1], "
                                 f"got {self.matmul_efficiency!r}")
            if not self.matmul_source.strip():
                raise ValueError(f"GPU {self.name!r}: a matmul_efficiency needs a matmul_source")
        if not self.source.strip():
            raise ValueError(f"GPU {self.name!r}: every entry needs a source")
        # Freeze the mapping so a shared catalog entry cannot be mutated by a caller.
        object.__setattr__(
            self, "peak_tflops", MappingProxyType(dict(self.peak_tflops))
        )

    def flops_per_sm_clock(self, precision: str) -> float | None:
        """Dense peak FLOP one SM completes per clock in ``precision`` (a V100's tensor
        cores: 1024 in fp16), the power of two the datasheet figures give (their peaks
        are rounded: 125 TFLOPS / (80 SMs x 1530 MHz) is 1021); None without
        ``sm_count`` and ``peak_clock_mhz``."""
        if self.sm_count is None or self.peak_clock_mhz is None:
            return None
        ratio = self.peak_flops(precision) / (self.sm_count * self.peak_clock_mhz * 1e6)
        return float(2 ** round(math.log2(ratio)))

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


class _GPUFile(BaseModel):
    """``data/catalog/gpus.yaml``: a list of entries, each validated as a :class:`GPUSpec`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    gpus: list[dict[str, Any]]


@functools.cache
def load_gpus() -> Mapping[str, GPUSpec]:
    """Every catalogued GPU by name, read once from ``data/catalog/gpus.yaml``."""
    return entries_by_name("gpus", read_catalog_file("gpus", _GPUFile).gpus, GPUSpec)


GPUS: Mapping[str, GPUSpec] = load_gpus()


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


# CUDA device names that name no form factor, read from nvidia-smi / torch on the
# systems: an H100 SXM5 reports "NVIDIA H100 80GB HBM3" (the PCIe card "NVIDIA H100
# PCIe", with HBM2e), so the words alone tie SXM5 and PCIe.
DEVICE_NAME_ALIASES = {"NVIDIA H100 80GB HBM3": "H100-SXM5-80GB"}
# Words naming another card than the one without them ("GTX 1080 Ti" is not a GTX 1080,
# an "RTX 3080 Laptop GPU" not an RTX 3080): an entry must account for them to match.
VARIANT_WORDS = frozenset({"TI", "SUPER", "LAPTOP", "MOBILE", "MAX"})


def match_device_name(device_name: str) -> str | None:
    """The catalog GPU a CUDA device name is, e.g. 'NVIDIA A100-SXM4-80GB' ->
    'A100-SXM4-80GB', 'NVIDIA H100 80GB HBM3' -> 'H100-SXM5-80GB' (an alias): the entry
    sharing the most name parts with it (its first part, the chip, required; a part
    may join two words, '1080Ti' = '1080 Ti'), and accounting for every variant word
    (Ti, Super, Laptop, ...); None when none or several match equally."""
    alias = DEVICE_NAME_ALIASES.get(" ".join(device_name.split()))
    if alias is not None:
        return alias
    words = device_name.upper().replace("-", " ").split()
    pairs = {a + b: (a, b) for a, b in zip(words, words[1:])}
    scored = []
    for name in list_gpus():
        parts = name.upper().split("-")
        covered = {word for part in parts for word in ((part,) if part in words else pairs.get(part, ()))}
        if parts[0] not in words and parts[0] not in pairs:
            continue
        if any(word in VARIANT_WORDS and word not in covered for word in words):
            continue  # another card: the name says what this entry does not
        scored.append((sum(part in words or part in pairs for part in parts), name))
    if not scored:
        return None
    best = max(score for score, _ in scored)
    winners = [name for score, name in scored if score == best]
    return winners[0] if len(winners) == 1 else None
