"""Where and how a run was produced: stored under ``provenance`` in every record.

Kept apart from the configuration (it never enters the run hash): the same
configuration run on another machine gives the same numbers, and this block
says which machine, command and library versions produced *this* record, and
how much memory the process needed at its peak.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys
from importlib import metadata

#: distributions whose versions change numbers or speed (None when not installed)
LIBRARIES = ("torch", "open_clip_torch", "numpy", "scipy", "scikit-learn", "pandas", "safetensors", "pillow")


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def threads() -> dict:
    """CPU threads the run could use: cores visible, torch's intra/inter-op pools, the usual env caps."""
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_count": os.cpu_count(),
        "affinity": affinity,
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def peak_memory() -> dict:
    """Peak resident memory of this process so far (MiB) and, on CUDA, peak allocated device memory."""
    out: dict = {"max_rss_mib": None}
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        out["max_rss_mib"] = round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        pass
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:  # noqa: BLE001 - provenance must never fail a finished run
        pass
    return out


def provenance() -> dict:
    """The record's ``provenance`` block (read when the run finishes)."""
    return {
        "command": list(sys.argv),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "threads": threads(),
        "peak_memory": peak_memory(),
    }
