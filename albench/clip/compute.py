"""Device, precision and determinism: where and how the backbone computes.

These change numbers, so they are part of every identity: the feature-cache
key, the run configuration hash and the record.

* ``--device``: ``auto`` (the first GPU if there is one, else the CPU), ``cpu``,
  ``cuda`` or ``cuda:N``.
* ``--precision``: ``fp32``; ``bf16`` (forward passes under ``torch.autocast`` with
  bfloat16: CUDA autocast on a GPU, CPU autocast on the CPU, so the reduced-precision
  code path also runs where no GPU is); ``auto`` = bf16 on CUDA, fp32 on the CPU.
* ``--deterministic``: ``torch.use_deterministic_algorithms(True)``, cuDNN in
  deterministic mode without benchmarking, and the cuBLAS workspace setting CUDA
  needs for deterministic matrix products (NVIDIA cuBLAS docs, "Results reproducibility";
  PyTorch notes "Reproducibility").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from albench.api.errors import AlbenchError

PRECISIONS = ("fp32", "bf16", "auto")
DEVICES_HELP = "auto, cpu, cuda, cuda:N"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class Compute:
    """A resolved device and precision."""

    device: torch.device
    precision: str  # fp32 | bf16

    @property
    def device_type(self) -> str:
        return self.device.type

    def key(self) -> str:
        """What enters the feature-cache key: device type and precision."""
        return f"{self.device.type}-{self.precision}"

    def describe(self) -> dict:
        return {"device": self.device.type, "precision": self.precision}


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast works here: always through CPU autocast; on CUDA when the GPU has bf16."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return False


def resolve_device(device: str | None = None) -> torch.device:
    """``auto`` -> cuda if available else cpu; other names are checked against this machine."""
    name = "auto" if device is None else str(device)
    if not _DEVICE_RE.match(name):
        raise AlbenchError(f"Unknown --device '{name}'. Valid: {DEVICES_HELP}.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AlbenchError(
                f"--device {name}: no CUDA GPU is visible on this machine (torch {torch.__version__}, "
                f"CUDA build {torch.version.cuda or 'none'}). Use --device cpu or --device auto."
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise AlbenchError(f"--device {name}: this machine has {n} GPU(s) (cuda:0 .. cuda:{n - 1}).")
    return dev


def resolve_compute(device: str | None = "auto", precision: str | None = "auto") -> Compute:
    dev = resolve_device(device)
    p = precision or "auto"
    if p not in PRECISIONS:
        raise AlbenchError(f"Unknown --precision '{p}'. Valid: {', '.join(PRECISIONS)}.")
    if p == "auto":
        p = "bf16" if dev.type == "cuda" and bf16_supported(dev) else "fp32"
    if p == "bf16" and not bf16_supported(dev):
        raise AlbenchError(
            f"--precision bf16: the GPU {torch.cuda.get_device_name(dev)} has no bfloat16 support. "
            f"Use --precision fp32."
        )
    return Compute(dev, p)


def compute_variants() -> list[dict]:
    """Every (device type, precision) a record can carry in ``config.compute``."""
    return [{"device": d, "precision": p} for d in ("cuda", "cpu") for p in ("bf16", "fp32")]


def set_deterministic(on: bool = True) -> None:
    """Deterministic kernels (and what CUDA needs for them); call before the first CUDA matmul."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=False)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False if on else torch.backends.cudnn.benchmark
