"""Pretraining corpus of the toy CLIP: rendered scenes with compositional captions.

Three kinds of images: a patterned, coloured shape on a background; a
full-frame texture swatch; a typeset digit. Each caption names a subset of the
image's attributes with words drawn from ``vocab.py`` (primary names mostly,
synonyms and ambiguous words sometimes). Every caption that is *true of* an
image counts as a positive in the contrastive loss (a supervised-contrastive
target, Khosla et al. 2020), so "a round thing." is not punished for matching a
ring. Captions get an optional run of neutral filler words in front so every
text position up to the context length is trained: CoOp-style adapters put 16
learned tokens before the class name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albench.data.toy.render import (
    BACKGROUNDS,
    COLORS,
    DIGIT_WORDS,
    PATTERNS,
    SHAPES,
    ShapeSpec,
    render_digit,
    render_shape,
)
from albench.data.toy.vocab import sample_name

FILLER = (
    "this",
    "is",
    "an",
    "image",
    "showing",
    "picture",
    "of",
    "here",
    "we",
    "see",
    "the",
    "a",
    "photo",
    "rendering",
    "simple",
    "drawing",
    "small",
    "nice",
    "example",
    "scene",
)

CAPTIONS = {
    "shape": (
        "a photo of a {color} {pattern} {shape}.",
        "a {color} {pattern} {shape}.",
        "a photo of a {color} {shape}.",
        "a {color} {shape}.",
        "a photo of a {pattern} {shape}.",
        "a {pattern} {shape}.",
        "a photo of a {shape}.",
        "a {shape}.",
        "a {shape} that is {color}.",
        "a {shape} that is {pattern}.",
        "a {color} {shape} on a {background} background.",
        "a {pattern} {color} pattern.",
        "something {color}.",
        "a photo of a {color} {pattern} {shape} on a {background} background.",
    ),
    "swatch": (
        "{pattern} texture.",
        "a {pattern} texture.",
        "a {color} {pattern} texture.",
        "a close-up of a {pattern} surface.",
        "a {pattern} {color} pattern.",
        "a {color} surface.",
    ),
    "digit": (
        "a photo of the digit {digit}.",
        "the digit {digit}.",
        "the number {digit}.",
        "a {color} digit {digit}.",
    ),
}
KIND_WEIGHTS = {"shape": 0.70, "swatch": 0.10, "digit": 0.20}
CORPUS_VERSION = 2


@dataclass(frozen=True)
class Sample:
    kind: str  # "shape", "swatch" or "digit"
    attrs: tuple  # ((key, value), ...)
    seed: int

    def attr(self) -> dict:
        return dict(self.attrs)


def sample_corpus(n: int, seed: int) -> list[Sample]:
    """``n`` attribute records; a pure function of ``seed``."""
    rng = np.random.default_rng(seed)
    colors = list(COLORS)
    kinds = list(KIND_WEIGHTS)
    p = np.array([KIND_WEIGHTS[k] for k in kinds])
    out = []
    for i in range(n):
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        if kind == "digit":
            color = colors[rng.integers(len(colors))] if rng.random() < 0.3 else "white"
            attrs = (("digit", DIGIT_WORDS[rng.integers(10)]), ("color", color), ("font", int(rng.integers(14, 44))))
        elif kind == "swatch":
            attrs = (
                ("pattern", PATTERNS[rng.integers(len(PATTERNS))]),
                ("color", colors[rng.integers(len(colors))]),
                ("period", float(rng.uniform(0.11, 0.24))),
                ("contrast", float(rng.uniform(0.35, 0.85))),
                ("noise", float(rng.uniform(0.02, 0.06))),
            )
        else:
            attrs = (
                ("shape", SHAPES[rng.integers(len(SHAPES))]),
                ("pattern", PATTERNS[rng.integers(len(PATTERNS))]),
                ("color", colors[rng.integers(len(colors))]),
                ("background", BACKGROUNDS[rng.integers(len(BACKGROUNDS))]),
                ("scale", float(rng.uniform(0.18, 0.44))),
                ("period", float(rng.uniform(0.11, 0.24))),
                ("contrast", float(rng.uniform(0.4, 0.85))),
                ("blur", bool(rng.random() < 0.1)),
            )
        out.append(Sample(kind, attrs, seed * 1_000_003 + i))
    return out


def render_sample(s: Sample, size: int = 32) -> np.ndarray:
    a = s.attr()
    if s.kind == "digit":
        return render_digit(
            DIGIT_WORDS.index(a["digit"]),
            s.seed,
            size,
            color=None if a["color"] == "white" else a["color"],
            font_range=(a["font"], a["font"] + 1),
        )
    if s.kind == "swatch":
        spec = ShapeSpec(
            "circle",
            a["pattern"],
            a["color"],
            "dark",
            full_frame=True,
            period=a["period"],
            contrast=a["contrast"],
            noise=a["noise"],
        )
    else:
        spec = ShapeSpec(
            a["shape"],
            a["pattern"],
            a["color"],
            a["background"],
            scale=a["scale"],
            period=a["period"],
            contrast=a["contrast"],
            blur=a["blur"],
        )
    return render_shape(spec, s.seed, size)


def render_corpus(samples: list[Sample], size: int = 32) -> np.ndarray:
    return np.stack([render_sample(s, size) for s in samples])


def make_caption(s: Sample, rng: np.random.Generator) -> tuple[str, dict]:
    """A random true caption for a sample and, per attribute it mentions, the values its word is true of."""
    a = s.attr()
    templates = CAPTIONS[s.kind]
    tmpl = templates[rng.integers(len(templates))]
    if s.kind == "digit" and "{color}" in tmpl and a["color"] == "white":
        tmpl = templates[0]
    words, mentioned = {}, {"kind": (s.kind,)}
    for key in ("shape", "pattern", "color", "digit", "background"):
        if "{" + key + "}" not in tmpl:
            continue
        if key == "background":
            words[key], mentioned[key] = a[key], (a[key],)
        else:
            words[key], mentioned[key] = sample_name(key, a[key], rng)
    text = tmpl.format(**words)
    if rng.random() < 0.5:
        text = " ".join(FILLER[j] for j in rng.integers(len(FILLER), size=int(rng.integers(1, 19)))) + " " + text
    return text, mentioned


def compatibility(samples: list[Sample], mentioned: list[dict]) -> np.ndarray:
    """M[i, j] = 1 when caption j is true of image i."""
    full = [{"kind": s.kind, **s.attr()} for s in samples]
    columns: dict[str, np.ndarray] = {}
    m = np.ones((len(samples), len(mentioned)), dtype=bool)
    for j, cap in enumerate(mentioned):
        for k, values in cap.items():
            if k not in columns:
                columns[k] = np.array([str(f.get(k)) for f in full])
            m[:, j] &= np.isin(columns[k], [str(v) for v in values])
    return m.astype(np.float32)
