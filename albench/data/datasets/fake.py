"""Stand-in datasets: CoOp-layout trees of synthetic JPEGs (``albench data fake``).

A tree has the real folder and file naming, class names (``catalog.json``),
class count, split files and, at ``scale="full"``, the official split sizes of
``COOP_SPLITS``; ``scale="small"`` writes a few images per class (the loaders
then need ``allow_custom_split``). Images are learnable: each class has its own
colour pair and stripe orientation/frequency, each image its own phase,
brightness jitter and pixel noise. Everything derives from ``seed``.
"""

from __future__ import annotations

import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from albench.api.errors import DataError
from albench.data.datasets.coop import COOP_SPLITS, CoOpDataset

SMALL_PER_CLASS = {"train": 2, "val": 1, "test": 1}
CALTECH_IGNORED = ("BACKGROUND_Google", "Faces_easy")
CALTECH_RENAMED = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
EUROSAT_NAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@lru_cache(maxsize=1)
def catalog() -> dict:
    return json.loads((Path(__file__).with_name("catalog.json")).read_text(encoding="utf-8"))


def split_camel_case(name: str) -> str:
    """UCF101 folder name -> CoOp class name: 'ApplyEyeMakeup' -> 'Apply_Eye_Makeup'."""
    return "_".join(re.findall(r"[A-Z][^A-Z]*", name)) or name


def cars_name(meta_name: str) -> str:
    """Stanford Cars devkit name -> CoOp class name, year in front: '... SUV 2000' -> '2000 ... SUV'."""
    parts = meta_name.split(" ")
    return " ".join([parts[-1], *parts[:-1]])


def sun_name(path: str) -> str:
    """SUN397 class path -> CoOp class name: '/c/church/outdoor' -> 'outdoor church'."""
    return " ".join(path.strip("/").split("/")[1:][::-1])


def classes_for(name: str) -> list[tuple[str, str]]:
    """[(folder or file key, CoOp class name)] in CoOp's label order."""
    cat = catalog()[name]
    if name == "caltech101":
        folders = [f for f in sorted(cat) if f not in CALTECH_IGNORED]
        return [(f, CALTECH_RENAMED.get(f, f)) for f in folders]
    if name == "eurosat":
        return [(f, EUROSAT_NAMES[f]) for f in sorted(cat)]
    if name == "ucf101":
        return [(f, split_camel_case(f)) for f in cat]
    if name == "oxford_pets":
        return [(f, f.lower()) for f in cat]
    if name == "stanford_cars":
        return [(f, cars_name(f)) for f in cat]
    if name == "sun397":
        return [(p, sun_name(p)) for p in cat]
    if name == "imagenet":
        return [(w, c) for w, c in cat]
    return [(f, f) for f in cat]  # dtd, food101 (folder names), fgvc_aircraft (variants), oxford_flowers (cat_to_name)


def per_class_counts(total: int, n_classes: int) -> list[int]:
    base, extra = divmod(total, n_classes)
    return [base + (1 if c < extra else 0) for c in range(n_classes)]


def split_counts(d: CoOpDataset, scale: str) -> dict[str, list[int]]:
    if scale == "full":
        return {s: per_class_counts(getattr(d, s), d.classes) for s in ("train", "val", "test")}
    if scale == "small":
        out = {s: [n] * d.classes for s, n in SMALL_PER_CLASS.items()}
        if d.name == "imagenet":
            out["val"] = [0] * d.classes
        return out
    raise DataError(f"Unknown scale {scale!r}; valid scales: full, small.")


def class_image(label: int, n_classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable synthetic image of class ``label``: class colours + stripes, per-image phase and noise."""
    g = np.random.default_rng(zlib.crc32(f"class{label}/{n_classes}".encode()))
    c1, c2 = g.uniform(0, 255, 3), g.uniform(0, 255, 3)
    angle, freq = g.uniform(0, np.pi), g.uniform(1.0, 4.0)
    yy, xx = np.mgrid[0:size, 0:size] / max(size, 1)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    img = c1 * wave[..., None] + c2 * (1 - wave[..., None])
    img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _plan(d: CoOpDataset, counts: dict[str, list[int]]):
    """Yield (split, path relative to the dataset folder, label, coop class name)."""
    classes = classes_for(d.name)
    if len(classes) != d.classes:
        raise AssertionError(f"catalog has {len(classes)} classes for {d.name}, table says {d.classes}")
    serial = 0
    for split in ("train", "val", "test"):
        for label, (key, cname) in enumerate(classes):
            for k in range(counts[split][label]):
                serial += 1
                n = serial
                if d.name == "caltech101":
                    rel = f"{key}/image_{n:04d}.jpg"
                elif d.name == "dtd":
                    rel = f"{key}/{key}_{n:04d}.jpg"
                elif d.name == "eurosat":
                    rel = f"{key}/{key}_{n}.jpg"
                elif d.name == "fgvc_aircraft":
                    rel = f"{1000000 + n:07d}.jpg"
                elif d.name == "oxford_flowers":
                    rel = f"image_{n:05d}.jpg"
                elif d.name == "ucf101":
                    rel = f"{cname}/v_{key}_g{n // 7 + 1:02d}_c{n % 7 + 1:02d}.jpg"
                elif d.name == "oxford_pets":
                    rel = f"{key}_{n}.jpg"
                elif d.name == "stanford_cars":
                    rel = f"{'cars_test' if split == 'test' else 'cars_train'}/{n:05d}.jpg"
                elif d.name == "food101":
                    rel = f"{key.strip('/')}/{100000 + n}.jpg"
                elif d.name == "sun397":
                    rel = f"{key.strip('/')}/sun_{n:08x}.jpg"
                elif d.name == "imagenet":
                    rel = (
                        f"train/{key}/{key}_{n}.JPEG" if split == "train" else f"val/{key}/ILSVRC2012_val_{n:08d}.JPEG"
                    )
                else:
                    raise AssertionError(d.name)
                yield split, rel, label, cname


def generate(
    name: str,
    root: str | Path,
    image_size: int = 64,
    scale: str = "small",
    seed: int = 0,
    workers: int = 8,
    progress: bool = False,
) -> dict:
    """Write a fake CoOp-layout tree for ``name`` under ``root``; returns a summary."""
    if name not in COOP_SPLITS:
        raise DataError(f"No fake generator for dataset '{name}'. Valid: {', '.join(sorted(COOP_SPLITS))}.")
    if image_size < 1:
        raise DataError(f"--image-size must be at least 1, got {image_size}.")
    d = COOP_SPLITS[name]
    counts = split_counts(d, scale)
    ds = Path(root) / d.folder
    img_dir = ds / d.image_dir if d.image_dir else ds
    plan = list(_plan(d, counts))
    seeds = np.random.default_rng(seed).integers(0, 2**63 - 1, size=len(plan))

    dirs = sorted({(img_dir / rel).parent for _, rel, _, _ in plan})
    for p in dirs:
        p.mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        from PIL import Image

        _, rel, label, _ = plan[i]
        rng = np.random.default_rng(int(seeds[i]))
        Image.fromarray(class_image(label, d.classes, image_size, rng)).save(img_dir / rel, quality=90)

    it = range(len(plan))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = pool.map(write, it)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(plan), desc=f"writing {name}", unit="img")
        for _ in results:
            pass

    classes = classes_for(name)
    by_split: dict[str, list] = {"train": [], "val": [], "test": []}
    for split, rel, label, cname in plan:
        by_split[split].append((rel, label, cname))
    if d.split_file is not None:
        data = {s: [[rel, label, cname] for rel, label, cname in v] for s, v in by_split.items()}
        (ds / d.split_file).write_text(json.dumps(data), encoding="utf-8")
    if name == "fgvc_aircraft":
        (ds / "variants.txt").write_text("".join(f"{c}\n" for _, c in classes), encoding="utf-8")
        for s, v in by_split.items():
            (ds / f"images_variant_{s}.txt").write_text(
                "".join(f"{rel[:-4]} {cname}\n" for rel, _, cname in v), encoding="utf-8"
            )
    if name == "oxford_flowers":
        (ds / "cat_to_name.json").write_text(
            json.dumps({str(i + 1): c for i, (_, c) in enumerate(classes)}, indent=1), encoding="utf-8"
        )
    if name == "imagenet":
        (ds / "classnames.txt").write_text("".join(f"{w} {c}\n" for w, c in classes), encoding="utf-8")
    sizes = {s: len(v) for s, v in by_split.items()}
    return {
        "dataset": name,
        "path": str(ds),
        "classes": d.classes,
        "images": len(plan),
        "image_size": image_size,
        "scale": scale,
        **sizes,
    }
