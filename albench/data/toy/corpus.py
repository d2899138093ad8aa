"""Pretraining corpus for the toy CLIP: scenes with compositional captions.

Each sample carries its attributes; each caption names a subset of them. That
lets the contrastive loss treat every caption that is *true of* an image as a
positive (a supervised-contrastive target), instead of punishing "a circle."
for matching a red striped circle. Captions get an optional run of neutral
filler words in front so that every text position up to the context length is
trained: CoOp-style adapters put 16 learned tokens before the class name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albench.data.toy.render import BACKGROUNDS, COLORS, DIGIT_WORDS, PATTERNS, SHAPES, ShapeSpec, render_digit, render_shape

FILLER = ("this", "is", "an", "image", "showing", "picture", "of", "here", "we", "see", "the", "a",
          "photo", "rendering", "simple", "drawing", "small", "nice", "example", "scene")

SHAPE_CAPTIONS = (
    "a photo of a {color} {pattern} {shape}.",
    "a {color} {pattern} {shape}.",
    "a photo of a {color} {shape}.",
    "a {color} {shape}.",
    "a photo of a {pattern} {shape}.",
    "a {pattern} {shape}.",
    "a photo of a {shape}.",
    "a {shape}.",
    "a {shape} that is {color}.",
    "a {color} {shape} on a {background} background.",
    "{pattern} texture.",
    "a {pattern} {color} pattern.",
    "something {color}.",
    "a photo of a {color} {pattern} {shape} on a {background} background.",
)
DIGIT_CAPTIONS = (
    "a photo of the digit {digit}.",
    "the digit {digit}.",
    "the number {digit}.",
    "a {color} digit {digit}.",
)


@dataclass(frozen=True)
class Sample:
    kind: str  # "shape" or "digit"
    attrs: tuple  # ((key, value), ...)
    seed: int

    def attr(self) -> dict:
        return dict(self.attrs)


STAGES = {
    # stage 1: the base corpus; stage 2 (continued training): more and larger digits, wider pattern periods
    1: {"digit_fraction": 0.15, "font_range": (18, 28), "period": (0.12, 0.22)},
    2: {"digit_fraction": 0.25, "font_range": (18, 46), "period": (0.12, 0.26)},
}


def sample_corpus(n: int, seed: int, stage: int = 1) -> list[Sample]:
    cfg = STAGES[stage]
    rng = np.random.default_rng(seed)
    colors = list(COLORS)
    out = []
    for i in range(n):
        if rng.random() < cfg["digit_fraction"]:
            color = colors[rng.integers(len(colors))] if rng.random() < 0.3 else "white"
            digit = DIGIT_WORDS[rng.integers(10)]
            attrs = (("digit", digit), ("color", color))
            if stage > 1:  # stage 1 draws no font size, so its random stream matches the shipped stage-1 run
                attrs += (("font", int(rng.integers(*cfg["font_range"]))),)
            out.append(Sample("digit", attrs, seed * 1_000_003 + i))
        else:
            attrs = (
                ("shape", SHAPES[rng.integers(len(SHAPES))]),
                ("pattern", PATTERNS[rng.integers(len(PATTERNS))]),
                ("color", colors[rng.integers(len(colors))]),
                ("background", BACKGROUNDS[rng.integers(len(BACKGROUNDS))]),
                ("scale", float(rng.uniform(0.22, 0.42))),
                ("period", float(rng.uniform(*cfg["period"]))),
                ("contrast", float(rng.uniform(0.45, 0.8))),
            )
            out.append(Sample("shape", attrs, seed * 1_000_003 + i))
    return out


def render_sample(s: Sample, size: int = 32) -> np.ndarray:
    a = s.attr()
    if s.kind == "digit":
        font = a.get("font")
        return render_digit(DIGIT_WORDS.index(a["digit"]), s.seed, size, color=None if a["color"] == "white" else a["color"],
                            font_range=(18, 28) if font is None else (font, font + 1))
    spec = ShapeSpec(a["shape"], a["pattern"], a["color"], a["background"], scale=a["scale"],
                     period=a["period"], contrast=a["contrast"])
    return render_shape(spec, s.seed, size)


def render_corpus(samples: list[Sample], size: int = 32, workers: int = 1) -> np.ndarray:
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            return np.stack(list(ex.map(render_sample, samples, [size] * len(samples), chunksize=256)))
    return np.stack([render_sample(s, size) for s in samples])


def make_caption(s: Sample, rng: np.random.Generator) -> tuple[str, dict]:
    """A random true caption for a sample and the attributes it mentions."""
    a = s.attr()
    if s.kind == "digit":
        tmpl = DIGIT_CAPTIONS[rng.integers(len(DIGIT_CAPTIONS))]
        if "{color}" in tmpl and a["color"] == "white":
            tmpl = DIGIT_CAPTIONS[0]
        keys = ["digit"] + (["color"] if "{color}" in tmpl else [])
    else:
        tmpl = SHAPE_CAPTIONS[rng.integers(len(SHAPE_CAPTIONS))]
        keys = [k for k in ("shape", "pattern", "color", "background") if "{" + k + "}" in tmpl]
    text = tmpl.format(**{k: a[k] for k in keys})
    if rng.random() < 0.5:
        text = " ".join(FILLER[j] for j in rng.integers(len(FILLER), size=int(rng.integers(1, 19)))) + " " + text
    mentioned = {"kind": s.kind, **{k: a[k] for k in keys}}
    return text, mentioned


def compatibility(samples: list[Sample], mentioned: list[dict]) -> np.ndarray:
    """M[i, j] = 1 when caption j is true of image i."""
    full = [{"kind": s.kind, **s.attr()} for s in samples]
    columns: dict[str, np.ndarray] = {}
    m = np.ones((len(samples), len(mentioned)), dtype=bool)
    for j, cap in enumerate(mentioned):
        for k, v in cap.items():
            if k not in columns:
                columns[k] = np.array([str(f.get(k)) for f in full])
            m[:, j] &= columns[k] == str(v)
    return m.astype(np.float32)
