"""Procedural images for the embedded toy world.

Every image is a pure function of an attribute record and a seed, so pools,
test sets and the pretraining corpus are reproducible bit for bit. Shapes are
drawn at 2x resolution and box-filtered down to ``size`` (anti-aliasing).
Attributes compose (colour x pattern x shape x background), which is what lets
a tiny CLIP learn a text encoder that generalises to new prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross", "star", "crescent")
PATTERNS = ("solid", "striped", "dotted", "checkered", "zigzag", "speckled", "ringed", "gridded")
COLORS = {
    "red": (0.90, 0.12, 0.12),
    "orange": (0.98, 0.55, 0.08),
    "yellow": (0.95, 0.90, 0.15),
    "green": (0.15, 0.75, 0.20),
    "cyan": (0.10, 0.85, 0.90),
    "blue": (0.15, 0.25, 0.95),
    "purple": (0.60, 0.20, 0.85),
    "pink": (0.98, 0.50, 0.75),
    "white": (0.95, 0.95, 0.95),
    "brown": (0.50, 0.30, 0.12),
}
BACKGROUNDS = ("dark", "light", "noisy", "gradient")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class ShapeSpec:
    """One renderable scene: a patterned, coloured shape on a background."""

    shape: str
    pattern: str
    color: str
    background: str = "dark"
    scale: float = 0.32  # radius as a fraction of the image side
    outline: bool = False  # draw the contour only (a domain shift)
    full_frame: bool = False  # pattern fills the image, no shape (texture swatch)
    period: float = 0.16  # pattern period as a fraction of the image side
    contrast: float = 0.65  # how dark the pattern's off-phase is (0 = none)
    noise: float = 0.03  # per-pixel gaussian noise after rendering
    blur: bool = False


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(n) + 0.5) / n - 0.5
    return np.meshgrid(c, -c)  # x right, y up, unit square centred at 0


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = np.hypot(x, y)
    if shape == "circle":
        return r < 1.0
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) < 0.8
    if shape == "triangle":
        m = np.ones_like(x, dtype=bool)
        for ang in (np.pi / 2 + np.pi, np.pi / 6, 5 * np.pi / 6):  # outward edge normals
            m &= x * np.cos(ang) + y * np.sin(ang) < 0.5
        return m
    if shape == "diamond":
        return np.abs(x) + np.abs(y) < 1.05
    if shape == "ring":
        return (r < 1.0) & (r > 0.6)
    if shape == "cross":
        return ((np.abs(x) < 0.32) & (np.abs(y) < 1.0)) | ((np.abs(y) < 0.32) & (np.abs(x) < 1.0))
    if shape == "star":
        theta = np.arctan2(y, x)
        return r < 0.5 + 0.5 * np.cos(5 * theta) ** 2
    if shape == "crescent":
        return (r < 1.0) & (np.hypot(x - 0.45, y) > 0.8)
    raise ValueError(f"Unknown shape {shape!r}. Valid: {', '.join(SHAPES)}")


def _pattern_mask(pattern: str, u: np.ndarray, v: np.ndarray, period: float, rng: np.random.Generator) -> np.ndarray:
    """Where the pattern's 'on' phase is (True) in pattern coordinates u, v."""
    p = period
    if pattern == "solid":
        return np.ones_like(u, dtype=bool)
    if pattern == "striped":
        return np.sin(2 * np.pi * u / p) > 0
    if pattern == "dotted":
        fu, fv = (u / p) % 1.0 - 0.5, (v / p) % 1.0 - 0.5
        return fu**2 + fv**2 > 0.09
    if pattern == "checkered":
        return (np.floor(u / p) + np.floor(v / p)) % 2 == 0
    if pattern == "zigzag":
        tri = np.abs((u / p) % 1.0 - 0.5) * p
        return np.sin(2 * np.pi * (v + tri) / p) > 0
    if pattern == "speckled":
        n = u.shape[0] // 2
        coarse = rng.random((n, n)) > 0.55
        return ~np.kron(coarse, np.ones((2, 2), dtype=bool))
    if pattern == "ringed":
        return np.sin(2 * np.pi * np.hypot(u, v) / p) > 0
    if pattern == "gridded":
        return ~(((u / p) % 1.0 < 0.3) | ((v / p) % 1.0 < 0.3))
    raise ValueError(f"Unknown pattern {pattern!r}. Valid: {', '.join(PATTERNS)}")


def _background(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "dark":
        return np.full((n, n, 3), rng.uniform(0.0, 0.2), dtype=np.float64)
    if kind == "light":
        return np.full((n, n, 3), rng.uniform(0.75, 0.95), dtype=np.float64)
    if kind == "noisy":
        base = rng.uniform(0.2, 0.6)
        return np.clip(base + rng.normal(0, 0.18, (n, n, 3)), 0, 1)
    if kind == "gradient":
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        t = np.linspace(0, 1, n)[None, :, None]
        return np.broadcast_to(a * (1 - t) + b * t, (n, n, 3)).copy()
    raise ValueError(f"Unknown background {kind!r}. Valid: {', '.join(BACKGROUNDS)}")


def _box_down(img: np.ndarray) -> np.ndarray:
    n = img.shape[0] // 2
    return img.reshape(n, 2, n, 2, 3).mean(axis=(1, 3))


def _blur(img: np.ndarray) -> np.ndarray:
    k = np.array([0.25, 0.5, 0.25])
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h = k[0] * pad[:, :-2] + k[1] * pad[:, 1:-1] + k[2] * pad[:, 2:]
    return k[0] * h[:-2] + k[1] * h[1:-1] + k[2] * h[2:]


def render_shape(spec: ShapeSpec, seed: int, size: int = 32) -> np.ndarray:
    """Render one scene as an (size, size, 3) uint8 array."""
    rng = np.random.default_rng(seed)
    n = 2 * size
    x, y = _grid(n)
    img = _background(spec.background, n, rng)
    color = np.clip(np.array(COLORS[spec.color]) + rng.normal(0, 0.04, 3), 0, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ca, sa = np.cos(angle), np.sin(angle)
    pu, pv = x * ca - y * sa, x * sa + y * ca
    phase = rng.uniform(0, spec.period, 2)
    on = _pattern_mask(spec.pattern, pu + phase[0], pv + phase[1], spec.period, rng)
    fill = np.where(on[..., None], color, color * (1 - spec.contrast))
    if spec.full_frame:
        img = fill
    else:
        scale = spec.scale * rng.uniform(0.8, 1.2)
        margin = 0.5 - scale
        cx, cy = rng.uniform(-margin, margin, 2) if margin > 0 else (0.0, 0.0)
        rot = rng.uniform(0, 2 * np.pi)
        cr, sr = np.cos(rot), np.sin(rot)
        sx, sy = (x - cx) / scale, (y - cy) / scale
        mask = _shape_mask(spec.shape, sx * cr - sy * sr, sx * sr + sy * cr)
        if spec.outline:
            inner = _shape_mask(spec.shape, (sx * cr - sy * sr) * 1.25, (sx * sr + sy * cr) * 1.25)
            mask = mask & ~inner
        img = np.where(mask[..., None], fill, img)
    img = _box_down(img)
    if spec.blur:
        img = _blur(img)
    if spec.noise > 0:
        img = img + rng.normal(0, spec.noise, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


_FONT_CACHE: dict[int, object] = {}


def render_digit(
    digit: int, seed: int, size: int = 32, color: str | None = None, font_range: tuple[int, int] = (18, 28)
) -> np.ndarray:
    """A typeset digit with random size, offset, rotation and stroke width."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font_px = int(rng.integers(*font_range))
    if font_px not in _FONT_CACHE:
        _FONT_CACHE[font_px] = ImageFont.load_default(size=font_px)
    font = _FONT_CACHE[font_px]
    n = 2 * size
    canvas = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(canvas)
    stroke = int(rng.integers(0, 2))
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font, stroke_width=stroke)
    ox = (n - (right - left)) / 2 - left + rng.uniform(-5, 5)
    oy = (n - (bottom - top)) / 2 - top + rng.uniform(-5, 5)
    draw.text((ox, oy), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    ink = np.asarray(canvas, dtype=np.float64)[..., None] / 255.0
    rgb = np.array(COLORS[color]) if color else np.ones(3)
    bg = rng.uniform(0.0, 0.15)
    img = bg * (1 - ink) + rgb * ink
    img = _box_down(img) + rng.normal(0, 0.03, (size, size, 3))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
