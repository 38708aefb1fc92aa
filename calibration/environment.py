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
        catalog_gpu=catalog.match_device_name(name) if cuda else None,
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
