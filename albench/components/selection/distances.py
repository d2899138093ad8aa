"""Chunked squared Euclidean distances and nearest-centre assignment.

Every selection algorithm in this package measures distances through these
functions, so nothing builds an N×N (or N×C·D) matrix: rows are processed in
chunks of at most ``CHUNK_ELEMS`` entries and memory stays O(N·(C+D)).

Outputs live on the inputs' device: given CUDA tensors the products run on the
GPU, so a GPU worker does not wait on one CPU core (``device_of`` picks a run's
device for a strategy).
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK_ELEMS = 1 << 24  # ~16M float32 entries (64 MiB) per distance block


def as_tensor(x: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A contiguous torch view/copy of ``x`` in ``dtype``."""
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)


def device_of(ctx) -> torch.device:
    """The device a strategy should compute on: its run's (``ctx.env.device``), else the CPU."""
    env = getattr(ctx, "env", None)
    dev = getattr(env, "device", None) if env is not None else None
    return torch.device(dev) if dev is not None else torch.device("cpu")


def rows_per_chunk(cols: int) -> int:
    """How many rows of a ``cols``-wide block fit in ``CHUNK_ELEMS`` entries (at least 1)."""
    return max(1, CHUNK_ELEMS // max(1, cols))


def sq_dists(
    x: torch.Tensor, c: torch.Tensor, x_sq: torch.Tensor | None = None, c_sq: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared Euclidean distances (n, k) via the Gram trick, clamped at 0."""
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    c_sq = (c * c).sum(1) if c_sq is None else c_sq
    return (x_sq[:, None] + c_sq[None, :] - 2.0 * (x @ c.T)).clamp_min_(0.0)


def min_sq_dist_to(
    x: torch.Tensor, centres: torch.Tensor, x_sq: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x: (min squared distance to ``centres``, argmin), chunked."""
    n = x.shape[0]
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    c_sq = (centres * centres).sum(1)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    arg = torch.empty(n, dtype=torch.long, device=x.device)
    step = rows_per_chunk(centres.shape[0])
    for s in range(0, n, step):
        d = sq_dists(x[s : s + step], centres, x_sq[s : s + step], c_sq)
        out[s : s + step], arg[s : s + step] = d.min(1)
    return out, arg


def nearest_two(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest centre (ties to the lowest), second-smallest value) per row, in the row-shifted
    units ||c||² − 2 x·c (= ||x − c||² − ||x||²), chunked."""
    n, k = x.shape[0], centres.shape[0]
    c_sq = (centres * centres).sum(1)[None, :]
    ct = centres.T.contiguous()
    arg = torch.empty(n, dtype=torch.long, device=x.device)
    second = torch.full((n,), float("inf"), device=x.device)
    step = rows_per_chunk(k)
    for s in range(0, n, step):
        g = torch.addmm(c_sq, x[s : s + step], ct, alpha=-2.0)
        arg[s : s + step] = g.argmin(1)
        if k > 1:
            g.scatter_(1, arg[s : s + step, None], float("inf"))
            second[s : s + step] = g.min(1).values
    return arg, second
