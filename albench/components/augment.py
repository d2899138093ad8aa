"""Batched image augmentation on tensors, on whatever device the images live on.

The CoOp / Dassl training transform (``RandomResizedCrop(scale=(0.08, 1))`` +
``RandomHorizontalFlip``; Zhou et al. 2022, github.com/KaiyangZhou/Dassl.pytorch)
done for a whole batch at once: crop boxes and flips are drawn with a seeded
``torch.Generator`` (on the CPU, so the same seed gives the same crops on any
device), then every crop is resampled to the output size with one
``affine_grid`` + ``grid_sample`` call on the images' device. No data loader,
no per-image Python work, nothing leaves the GPU.

Box sampling follows torchvision's ``RandomResizedCrop.get_params``: up to 10
attempts of (area fraction ~ U(scale), log aspect ratio ~ U(log ratio)); the
first box that fits is used, otherwise the whole image (torchvision's fallback
for a square image). Resampling is bilinear without antialiasing (torchvision
resizes with antialias), a deliberate speed trade-off that matters only for
crops much larger than the output size.

Bilinear resampling is linear in the pixel values, so augmenting normalised
pixels equals normalising augmented pixels (``padding_mode="border"`` never
mixes in a constant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from albench.api.errors import AlbenchError

DEFAULT_SCALE = (0.08, 1.0)
DEFAULT_RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass
class Crops:
    """Per-image crop boxes in pixels (top, left, height, width) and flip flags, all (n,)."""

    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    flip: torch.Tensor

    def __len__(self) -> int:
        return len(self.top)

    def __getitem__(self, idx) -> "Crops":
        return Crops(self.top[idx], self.left[idx], self.height[idx], self.width[idx], self.flip[idx])


def _check_range(name: str, rng: tuple[float, float], lo: float, hi: float) -> None:
    if not (len(rng) == 2 and lo < rng[0] <= rng[1] <= hi):
        raise AlbenchError(f"augmentation {name}={tuple(rng)!r} is invalid; valid: two numbers a <= b in ({lo}, {hi}].")


def sample_crops(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
    flip: bool = True,
    attempts: int = 10,
) -> Crops:
    """Random-resized-crop boxes and horizontal flips for ``n`` images of ``height`` x ``width``."""
    _check_range("scale", scale, 0.0, 1.0)
    _check_range("ratio", ratio, 0.0, float("inf"))
    area = float(height * width)
    target = torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=generator) * area
    log_r = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * r)).long()
    h = torch.round(torch.sqrt(target / r)).long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.to(torch.int8).argmax(dim=1)
    rows = torch.arange(n)
    found = ok.any(dim=1)
    w = torch.where(found, w[rows, first], torch.full((n,), width))
    h = torch.where(found, h[rows, first], torch.full((n,), height))
    u_top = torch.rand(n, generator=generator)
    u_left = torch.rand(n, generator=generator)
    top = torch.floor(u_top * (height - h + 1).float()).long()
    left = torch.floor(u_left * (width - w + 1).float()).long()
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    return Crops(top, left, h, w, flips)


def apply_crops(images: torch.Tensor, crops: Crops, size: int | None = None) -> torch.Tensor:
    """Resample each image's box to ``size`` x ``size`` (default: the input size), flipping where asked.

    ``images`` is float (n, C, H, W) on any device; returns (n, C, size, size) there.
    """
    n, c, height, width = images.shape
    if len(crops) != n:
        raise ValueError(f"{len(crops)} crop boxes for {n} images")
    size = size or height
    dev = images.device
    top, left = crops.top.to(dev).float(), crops.left.to(dev).float()
    h, w = crops.height.to(dev).float(), crops.width.to(dev).float()
    # normalised coordinates (align_corners=False): pixel edge 0 -> -1, edge W -> +1
    cx = (left + w / 2) * (2.0 / width) - 1.0
    cy = (top + h / 2) * (2.0 / height) - 1.0
    sx = w / width * torch.where(crops.flip.to(dev), -1.0, 1.0)
    sy = h / height
    theta = torch.zeros(n, 2, 3, device=dev, dtype=torch.float32)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(images.dtype)


def random_resized_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    size: int | None = None,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
    flip: bool = True,
) -> torch.Tensor:
    """Batched ``RandomResizedCrop`` + ``RandomHorizontalFlip`` of float (n, C, H, W) images."""
    crops = sample_crops(images.shape[0], images.shape[2], images.shape[3], generator, scale, ratio, flip)
    return apply_crops(images, crops, size)
