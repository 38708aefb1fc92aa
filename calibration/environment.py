"""The environment fingerprint: what a profile was measured on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess

import torch

from simulator import catalog
from simulator.profile import Environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def match_catalog_gpu(device_name: str) -> str | None:
    """The catalog GPU whose name matches a CUDA device name, e.g. 'NVIDIA H100 80GB
    HBM3' -> 'H100-SXM5-80GB'; None when none or several match."""
    words = set(device_name.upper().replace("-", " ").split())
    scored = []
    for name in catalog.list_gpus():
        parts = name.upper().split("-")
        if parts[0] in words:
            scored.append((sum(part in words for part in parts), name))
    if not scored:
        return None
    best = max(score for score, _ in scored)
    winners = [name for score, name in scored if score == best]
    return winners[0] if len(winners) == 1 else None


def fingerprint(device: torch.device) -> Environment:
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else cpu_model()
    nccl = None
    if cuda and hasattr(torch.cuda, "nccl"):
        try:
            nccl = ".".join(map(str, torch.cuda.nccl.version()))
        except (RuntimeError, AttributeError):
            nccl = None
    return Environment(
        device_kind="cuda" if cuda else "cpu",
        device_name=name,
        catalog_gpu=match_catalog_gpu(name) if cuda else None,
        driver=_driver() if cuda else None,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        nccl=nccl,
        cpu=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        torch_threads=torch.get_num_threads(),
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        date_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
