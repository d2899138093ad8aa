"""The toy CLIPs: open_clip model configs small enough to pretrain on 2 CPU cores.

``toy-clip`` (default): 32x32 images, patch 4 (64 patches, so visual prompt
methods meet a patch grid like ViT-B/16's 196 rather than a handful), width 96,
4 vision and 3 text layers, 32 text positions (16 learnable context tokens plus
a class name still fit, as in CoOp). ``toy-clip-v1``: the earlier model (patch
8, 16 patches, 3 vision layers), kept loadable so records made with it resolve.
Both are plain open_clip configs (``configs/*.json``) registered with
``open_clip.add_model_config``; their weights ship in ``weights/``.
"""

from __future__ import annotations

from pathlib import Path

import torch

TOY_ARCH = "toy-clip"
TOY_ARCHS = ("toy-clip", "toy-clip-v1")
CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILES = {
    "toy-clip": WEIGHTS_DIR / "toy_clip_v2.safetensors",
    "toy-clip-v1": WEIGHTS_DIR / "toy_clip.safetensors",
}
CARD_FILES = {"toy-clip": WEIGHTS_DIR / "toy_clip_v2.json", "toy-clip-v1": WEIGHTS_DIR / "toy_clip.json"}
SHIPPED_WEIGHTS = WEIGHTS_FILES  # what ``--pretrained albench-toy`` resolves to, per architecture
WEIGHTS_FILE = WEIGHTS_FILES[TOY_ARCH]
CARD_FILE = CARD_FILES[TOY_ARCH]
_registered = False


def register_configs() -> None:
    """Make the toy architectures known to open_clip (idempotent)."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


def build_toy_clip(arch: str = TOY_ARCH) -> torch.nn.Module:
    """A randomly initialised toy CLIP (weights are loaded by the backbone)."""
    import open_clip

    register_configs()
    return open_clip.create_model(arch, pretrained=None)
