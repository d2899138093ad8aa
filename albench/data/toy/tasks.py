"""Downstream tasks of the embedded toy world.

Each mimics one kind of dataset in the paper, with its own classes, zero-shot
template and distribution shift relative to the pretraining renders:

* ``toy_shapes``   easy object recognition (Caltech-like): 10 colour-shape
  objects, two shapes per colour, any pattern/background;
* ``toy_textures`` texture recognition (DTD-like): full-frame pattern swatches,
  never seen whole in pretraining, lower contrast, noise;
* ``toy_shifted``  strongly shifted (EuroSAT-like): small, blurred shapes on
  noise;
* ``toy_patterns`` fine-grained on a weakly learned attribute (Aircraft-like):
  32 pattern x shape classes;
* ``toy_fine``     fine-grained with many classes (Flowers-like): 80 colour x
  shape classes, long-tailed (imbalanced) pool;
* ``digits``       scikit-learn's real handwritten digits (``load_digits``,
  8x8 upscaled to 20x20 and centred on a 32x32 canvas, the size of the typeset
  digits in pretraining), zero-shot from typeset-digit captions (UCF-like: the
  hardest shift).

Images depend only on the task definition, never on the run seed, and are
cached on disk after the first render.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from albench.api.dataset import ArraySource, Dataset as Task, Split
from albench.data.toy.render import COLORS, PATTERNS, SHAPES, DIGIT_WORDS, BACKGROUNDS, ShapeSpec, render_shape

TOY_VERSION = 2  # bump when rendering changes (invalidates the on-disk cache)
COLOR_NAMES = tuple(COLORS)


@dataclass(frozen=True)
class ToyTaskDef:
    name: str
    classnames: tuple[str, ...]
    template: str
    pool_per_class: tuple[int, ...]
    test_per_class: int
    make: Callable[[int, np.random.Generator], ShapeSpec]
    description: str


SHAPE_PAIRS = (("red", "circle"), ("red", "square"), ("blue", "triangle"), ("blue", "star"), ("green", "ring"),
               ("green", "cross"), ("yellow", "diamond"), ("yellow", "crescent"), ("purple", "circle"),
               ("purple", "triangle"))


def _shapes(label: int, rng: np.random.Generator) -> ShapeSpec:
    color, shape = SHAPE_PAIRS[label]
    return ShapeSpec(shape, PATTERNS[rng.integers(8)], color, BACKGROUNDS[rng.integers(4)],
                     scale=float(rng.uniform(0.22, 0.42)), period=float(rng.uniform(0.12, 0.22)),
                     contrast=float(rng.uniform(0.45, 0.8)))


def _textures(label: int, rng: np.random.Generator) -> ShapeSpec:
    return ShapeSpec("circle", PATTERNS[label], COLOR_NAMES[rng.integers(10)], "dark", full_frame=True,
                     period=float(rng.uniform(0.12, 0.22)), contrast=float(rng.uniform(0.4, 0.7)), noise=0.04)


FINE_CLASSES = tuple(f"{c} {s}" for c in COLOR_NAMES for s in SHAPES)
PATTERN_CLASSES = tuple(f"{p} {s}" for p in ("striped", "dotted", "checkered", "ringed") for s in SHAPES)


def _fine(label: int, rng: np.random.Generator) -> ShapeSpec:
    color, shape = FINE_CLASSES[label].split(" ")
    return ShapeSpec(shape, PATTERNS[rng.integers(8)], color, BACKGROUNDS[rng.integers(4)],
                     scale=float(rng.uniform(0.22, 0.4)), period=float(rng.uniform(0.12, 0.22)),
                     contrast=float(rng.uniform(0.3, 0.6)))


def _patterns(label: int, rng: np.random.Generator) -> ShapeSpec:
    pattern, shape = PATTERN_CLASSES[label].split(" ")
    return ShapeSpec(shape, pattern, COLOR_NAMES[rng.integers(10)], BACKGROUNDS[rng.integers(4)],
                     scale=float(rng.uniform(0.3, 0.42)), period=float(rng.uniform(0.14, 0.22)),
                     contrast=float(rng.uniform(0.5, 0.8)))


def _shifted(label: int, rng: np.random.Generator) -> ShapeSpec:
    return ShapeSpec(SHAPES[label], PATTERNS[rng.integers(8)], COLOR_NAMES[rng.integers(10)], "noisy",
                     scale=float(rng.uniform(0.17, 0.26)), noise=0.08, blur=True)


def _long_tail(n_classes: int, head: int, ratio: float) -> tuple[int, ...]:
    """Exponential long tail from ``head`` down to ``head / ratio`` samples (as in LT benchmarks)."""
    return tuple(max(2, int(round(head * ratio ** (-i / (n_classes - 1))))) for i in range(n_classes))


TOY_TASKS: dict[str, ToyTaskDef] = {
    d.name: d for d in (
        ToyTaskDef("toy_shapes", tuple(f"{c} {s}" for c, s in SHAPE_PAIRS), "a photo of a {}.", (200,) * 10, 100,
                   _shapes, "10 colour-shape objects, two shapes per colour (easy, Caltech-like)"),
        ToyTaskDef("toy_textures", PATTERNS, "{} texture.", (250,) * 8, 125, _textures,
                   "8 full-frame texture swatches, never seen whole in pretraining (DTD-like)"),
        ToyTaskDef("toy_shifted", SHAPES, "a photo of a {}.", (250,) * 8, 125, _shifted,
                   "8 shapes, small, blurred, on noise (strong shift, EuroSAT-like)"),
        ToyTaskDef("toy_patterns", PATTERN_CLASSES, "a photo of a {}.", (75,) * 32, 30, _patterns,
                   "32 pattern-shape classes (fine-grained on a weakly learned attribute, Aircraft-like)"),
        ToyTaskDef("toy_fine", FINE_CLASSES, "a photo of a {}.", _long_tail(80, 70, 10.0), 20, _fine,
                   "80 colour-shape classes, long-tailed pool (fine-grained, Flowers-like)"),
    )
}


def _cache_file(name: str) -> Path:
    from albench.data.features import default_cache_dir

    return default_cache_dir() / "toy" / f"{name}-v{TOY_VERSION}.npz"


def _render_split(d: ToyTaskDef, split: str, per_class: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    base = int.from_bytes(hashlib.sha256(f"{d.name}/{split}".encode()).digest()[:4], "little")
    rng = np.random.default_rng(base)
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(per_class)])
    rng.shuffle(labels)
    specs = [d.make(int(y), rng) for y in labels]
    seeds = rng.integers(0, 2**31 - 1, size=len(labels))
    images = np.stack([render_shape(s, int(z)) for s, z in zip(specs, seeds)])
    return images, labels


def build_toy_task(name: str) -> Task:
    d = TOY_TASKS[name]
    path = _cache_file(name)
    arrays = None
    if path.exists():
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in ("pool_x", "pool_y", "test_x", "test_y")}
        except Exception:
            arrays = None  # a damaged cache is re-rendered, never trusted
    if arrays is None:
        px, py = _render_split(d, "pool", d.pool_per_class)
        tx, ty = _render_split(d, "test", (d.test_per_class,) * len(d.classnames))
        arrays = {"pool_x": px, "pool_y": py, "test_x": tx, "test_y": ty}
        _atomic_savez(path, arrays)
    return Task(d.name, list(d.classnames), d.template, Split(ArraySource(arrays["pool_x"]), arrays["pool_y"]),
                Split(ArraySource(arrays["test_x"]), arrays["test_y"]),
                meta={"suite": "toy", "description": d.description})


def _atomic_savez(path: Path, arrays: dict) -> None:
    from albench.api.atomic import AtomicWriteError, atomic_write

    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except AtomicWriteError:
        pass  # caching is an optimisation; an unwritable cache only costs a re-render


DIGITS_POOL = 1200
DIGIT_SIZE = 20


def build_digits() -> Task:
    """scikit-learn's 1,797 real 8x8 handwritten digits, upscaled to 32x32 (pool 1,200 / test 597)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", align_corners=False).clamp(0, 1)
    canvas = torch.zeros(len(x), 1, 32, 32)
    o = (32 - DIGIT_SIZE) // 2
    canvas[:, :, o:o + DIGIT_SIZE, o:o + DIGIT_SIZE] = x
    images = (canvas.squeeze(1).numpy() * 255 + 0.5).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    pool, test = order[:DIGITS_POOL], order[DIGITS_POOL:]
    return Task("digits", list(DIGIT_WORDS), "a photo of the digit {}.", Split(ArraySource(images[pool]), labels[pool]),
                Split(ArraySource(images[test]), labels[test]),
                meta={"suite": "toy", "description": "scikit-learn handwritten digits (real), 8x8 upscaled to 20x20 on a 32x32 canvas"})


class ToyLoader:
    """The dataset loader of one toy task; the ``albench.datasets`` entry points in pyproject.toml name these."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, data_root: str | None = None, **options) -> Task:
        return build_digits() if self.name == "digits" else build_toy_task(self.name)

    def __repr__(self) -> str:
        return f"ToyLoader({self.name!r})"


toy_shapes, toy_textures, toy_shifted = ToyLoader("toy_shapes"), ToyLoader("toy_textures"), ToyLoader("toy_shifted")
toy_patterns, toy_fine, digits = ToyLoader("toy_patterns"), ToyLoader("toy_fine"), ToyLoader("digits")

TOY_SUITE = (*TOY_TASKS, "digits")
