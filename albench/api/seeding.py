"""Deterministic seed derivation.

Every random stream in a run (selection, adapter init, batch order, noise) is
derived from the run seed and a tuple of names, so streams are independent of
each other and of the order in which runs execute.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``keys``."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def numpy_rng(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *keys))


def torch_generator(seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *keys))
    return g


def seed_everything(seed: int, *keys: object) -> None:
    """Seed torch's global generator (parameter init uses it)."""
    torch.manual_seed(derive_seed(seed, *keys))
