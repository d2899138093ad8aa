"""Downstream tasks of the embedded toy world.

Each mimics one kind of dataset in the paper. As with real CLIP, the image
features carry every task's classes (they were all learned in pretraining from
the primary names, see ``vocab.py``); a task's zero-shot difficulty comes from
the text side (class names that pretraining captions used rarely or
ambiguously, a template unlike the captions) and from distribution shift:

* ``toy_shapes``   object recognition (Caltech-like): 10 colour-shape objects,
  one per colour, named with the ambiguous colour word where one exists
  ("reddish circle" vs "reddish ring"), so zero-shot leans on the shape word;
* ``toy_textures`` texture recognition (DTD-like): 8 full-frame pattern
  swatches named by their secondary synonyms, with a generic template
  ("a photo of a banded object.") that CoOp's learned context replaces;
* ``toy_shifted``  strongly shifted (EuroSAT-like): 10 object colours seen
  through a fixed colour transform (the image features still separate them,
  the colour words no longer point at them);
* ``toy_patterns`` fine-grained (Aircraft-like): 32 pattern x colour swatches
  whose pattern words are the rare synonyms ("annulus"-like words);
* ``toy_fine``     fine-grained with many classes (Flowers-like): 80 colour x
  pattern swatches with synonym colour words, long-tailed (imbalanced) pool;
* ``digits``       scikit-learn's real handwritten digits (``load_digits``,
  8x8 upscaled to 20x20 and centred on a 32x32 canvas), zero-shot from
  typeset-digit captions (UCF-like: the hardest shift).

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
from albench.data.toy.render import BACKGROUNDS, COLORS, DIGIT_WORDS, PATTERNS, SHAPES, ShapeSpec, render_shape
from albench.data.toy.vocab import name_of, shared_word

TOY_VERSION = 5  # bump when rendering or class names change (invalidates the on-disk cache)
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
    post: Callable[[np.ndarray], np.ndarray] | None = None  # applied to every rendered image (a shift)


# toy_shapes: one colour-shape object per colour; the colour words are the ambiguous ones where one exists, and the
# two objects that share a colour word have look-alike shapes (circle/ring, square/diamond, triangle/star, ...)
SHAPE_PAIRS = (
    ("red", "circle"),
    ("pink", "ring"),
    ("orange", "square"),
    ("yellow", "diamond"),
    ("blue", "triangle"),
    ("cyan", "star"),
    ("purple", "cross"),
    ("brown", "crescent"),
    ("green", "circle"),
    ("white", "square"),
)
FINE_PAIRS = tuple((c, p) for c in COLOR_NAMES for p in PATTERNS)
PATTERN_PAIRS = tuple((p, c) for p in PATTERNS for c in ("red", "blue", "green", "yellow"))
# a fixed colour transform: the strong shift of toy_shifted (its colour words still name the hue before it)
SHIFT_MIX = 0.5 * np.eye(3) + 0.5 * np.array([[0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.7, 0.1, 0.2]])


def _color_word(color: str, kind: str) -> str:
    return (
        shared_word("color", color)
        if kind == "shared" and shared_word("color", color)
        else name_of("color", color, "primary" if kind == "shared" else kind)
    )


def _shapes(label: int, rng: np.random.Generator) -> ShapeSpec:
    color, shape = SHAPE_PAIRS[label]
    return ShapeSpec(
        shape,
        PATTERNS[rng.integers(8)],
        color,
        BACKGROUNDS[rng.integers(4)],
        scale=float(rng.uniform(0.22, 0.42)),
        period=float(rng.uniform(0.12, 0.22)),
        contrast=float(rng.uniform(0.45, 0.8)),
    )


def _textures(label: int, rng: np.random.Generator) -> ShapeSpec:
    return ShapeSpec(
        "circle",
        PATTERNS[label],
        COLOR_NAMES[rng.integers(10)],
        "dark",
        full_frame=True,
        period=float(rng.uniform(0.12, 0.22)),
        contrast=float(rng.uniform(0.4, 0.7)),
        noise=0.04,
    )


def _fine(label: int, rng: np.random.Generator) -> ShapeSpec:
    color, pattern = FINE_PAIRS[label]
    return ShapeSpec(
        "circle",
        pattern,
        color,
        "dark",
        full_frame=True,
        period=float(rng.uniform(0.12, 0.22)),
        contrast=float(rng.uniform(0.4, 0.8)),
        noise=0.04,
    )


def _patterns(label: int, rng: np.random.Generator) -> ShapeSpec:
    pattern, color = PATTERN_PAIRS[label]
    return ShapeSpec(
        "circle",
        pattern,
        color,
        "dark",
        full_frame=True,
        period=float(rng.uniform(0.12, 0.22)),
        contrast=float(rng.uniform(0.4, 0.8)),
        noise=0.04,
    )


def _shifted(label: int, rng: np.random.Generator) -> ShapeSpec:
    return ShapeSpec(
        SHAPES[rng.integers(8)],
        PATTERNS[rng.integers(8)],
        COLOR_NAMES[label],
        BACKGROUNDS[rng.integers(4)],
        scale=float(rng.uniform(0.2, 0.35)),
    )


def _colour_shift(images: np.ndarray) -> np.ndarray:
    return np.clip(images.astype(np.float64) @ SHIFT_MIX.T + 0.5, 0, 255).astype(np.uint8)


def _long_tail(n_classes: int, head: int, ratio: float) -> tuple[int, ...]:
    """Exponential long tail from ``head`` down to ``head / ratio`` samples (as in LT benchmarks)."""
    return tuple(max(2, int(round(head * ratio ** (-i / (n_classes - 1))))) for i in range(n_classes))


TOY_TASKS: dict[str, ToyTaskDef] = {
    d.name: d
    for d in (
        ToyTaskDef(
            "toy_shapes",
            tuple(f"{_color_word(c, 'shared')} {s}" for c, s in SHAPE_PAIRS),
            "a photo of a {}.",
            (200,) * 10,
            100,
            _shapes,
            "10 colour-shape objects named with ambiguous colour words where one exists (Caltech-like)",
        ),
        ToyTaskDef(
            "toy_textures",
            tuple(name_of("pattern", p, "secondary") for p in PATTERNS),
            "a photo of a {} object.",
            (250,) * 8,
            125,
            _textures,
            "8 texture swatches named by their synonyms (DTD-like)",
        ),
        ToyTaskDef(
            "toy_shifted",
            COLOR_NAMES,
            "something {}.",
            (200,) * 10,
            100,
            _shifted,
            "10 object colours under a fixed colour transform (strong shift, EuroSAT-like)",
            post=_colour_shift,
        ),
        ToyTaskDef(
            "toy_patterns",
            tuple(f"{name_of('pattern', p, 'rare')} {c}" for p, c in PATTERN_PAIRS),
            "a {} texture.",
            (75,) * 32,
            30,
            _patterns,
            "32 pattern-colour swatches whose pattern words are the rare ones (fine-grained, Aircraft-like)",
        ),
        ToyTaskDef(
            "toy_fine",
            tuple(f"{_color_word(c, 'secondary')} {p}" for c, p in FINE_PAIRS),
            "a photo of a {}.",
            _long_tail(80, 70, 10.0),
            20,
            _fine,
            "80 colour-pattern swatches with synonym colour words, long-tailed pool (fine-grained, Flowers-like)",
        ),
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
    return (d.post(images) if d.post is not None else images), labels


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
    return Task(
        d.name,
        list(d.classnames),
        d.template,
        Split(ArraySource(arrays["pool_x"]), arrays["pool_y"]),
        Split(ArraySource(arrays["test_x"]), arrays["test_y"]),
        meta={"suite": "toy", "description": d.description},
    )


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
    canvas[:, :, o : o + DIGIT_SIZE, o : o + DIGIT_SIZE] = x
    images = (canvas.squeeze(1).numpy() * 255 + 0.5).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    pool, test = order[:DIGITS_POOL], order[DIGITS_POOL:]
    return Task(
        "digits",
        list(DIGIT_WORDS),
        "a photo of the digit {}.",
        Split(ArraySource(images[pool]), labels[pool]),
        Split(ArraySource(images[test]), labels[test]),
        meta={
            "suite": "toy",
            "description": "scikit-learn handwritten digits (real), 8x8 upscaled to 20x20 on a 32x32 canvas",
        },
    )


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
