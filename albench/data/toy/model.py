"""The toy CLIP: an open_clip ``CLIP`` small enough to pretrain on 2 CPU cores.

32x32 images, patch 8, width 96, 3 layers per tower, 32 text positions (so that
16 learnable context tokens plus a class name still fit, as in CoOp). The
weights shipped in ``albench/toy/weights`` come from ``albench toy pretrain``.
"""
from __future__ import annotations

from pathlib import Path

import torch

TOY_ARCH = "toy-clip"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "toy_clip.safetensors"
CARD_FILE = WEIGHTS_DIR / "toy_clip.json"

TOY_CLIP_CONFIG: dict = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 96, "layers": 3, "head_width": 32, "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 96, "heads": 3, "layers": 3},
}


def build_toy_clip() -> torch.nn.Module:
    """A randomly initialised toy CLIP (weights are loaded by the backbone)."""
    from open_clip.model import CLIP

    return CLIP(
        embed_dim=TOY_CLIP_CONFIG["embed_dim"],
        vision_cfg=dict(TOY_CLIP_CONFIG["vision_cfg"]),
        text_cfg=dict(TOY_CLIP_CONFIG["text_cfg"]),
    )


