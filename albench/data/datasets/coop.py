"""Loaders for the CoOp data layout (KaiyangZhou/CoOp ``DATASETS.md``), strictly validated.

Each dataset lives in ``<data root>/<folder>/`` with the official split file
CoOp distributes (``split_zhou_<Name>.json``: ``{"train"|"val"|"test": [[path,
label, classname], ...]}``; FGVC-Aircraft: ``variants.txt`` and
``images_variant_{train,val,test}.txt``; ImageNet: ``classnames.txt`` and the
``train``/``val`` folders, val serving as the test set). Class names are taken
from the split file exactly as CoOp does (so Caltech's renamed classes,
EuroSAT's readable names, UCF101's split CamelCase, Cars' leading year,
SUN397's reversed parts and Flowers' ``cat_to_name.json`` names arrive as
CoOp wrote them), with ``_`` replaced by a space as CoOp does before
prompting; the raw names are kept in ``task.meta["coop_classnames"]``.

The pool is the train split, the test split is the evaluation set; the val
split is loaded (``task.val``) but no protocol step uses it. A missing split
file is an error: a random split is never generated in its place. Split sizes
and class counts must equal CoOp's (``COOP_SPLITS``) unless
``allow_custom_split=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from albench.api.errors import DataError
from albench.data.tasks import Task
from albench.data.datasets.build import Entries, build_task, check_options, check_train_coverage, safe_relpath

DATASETS_URL = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"
ENV_DATA = "ALBENCH_DATA"


@dataclass(frozen=True)
class CoOpDataset:
    name: str  # albench dataset name
    coop_name: str  # CoOp's DATASET.NAME (and the suffix of its split file)
    folder: str  # folder under the data root
    image_dir: str  # split paths are relative to this folder ("" = the dataset folder)
    template: str  # CoOp's zero-shot template (trainers/zsclip.py CUSTOM_TEMPLATES)
    classes: int
    train: int
    val: int
    test: int
    anchor: str  # section of CoOp's DATASETS.md
    layout: tuple[str, ...]

    @property
    def split_file(self) -> str | None:
        if self.name in ("fgvc_aircraft", "imagenet"):
            return None
        return f"split_zhou_{self.coop_name}.json"

    def layout_text(self) -> str:
        return "\n".join([f"  {self.folder}/", *(f"    {line}" for line in self.layout)])

    def instructions(self) -> str:
        return f"Get the files as described in CoOp's DATASETS.md: {DATASETS_URL}#{self.anchor}"


# The official CoOp splits: classes and train / val / test sizes (CoOp paper, Table 5 statistics). One table,
# used by the loaders' validation, the fake-tree generator and the README.
COOP_SPLITS: dict[str, CoOpDataset] = {
    d.name: d
    for d in (
        CoOpDataset(
            "caltech101",
            "Caltech101",
            "caltech-101",
            "101_ObjectCategories",
            "a photo of a {}.",
            100,
            4128,
            1649,
            2465,
            "caltech101",
            (
                "101_ObjectCategories/<folder>/image_0001.jpg   (accordion/, airplanes/, Faces/, ...)",
                "split_zhou_Caltech101.json",
            ),
        ),
        CoOpDataset(
            "dtd",
            "DescribableTextures",
            "dtd",
            "images",
            "{} texture.",
            47,
            2820,
            1128,
            1692,
            "dtd",
            ("images/<class>/<class>_0001.jpg   (banded/, blotchy/, ...)", "split_zhou_DescribableTextures.json"),
        ),
        CoOpDataset(
            "eurosat",
            "EuroSAT",
            "eurosat",
            "2750",
            "a centered satellite photo of {}.",
            10,
            13500,
            5400,
            8100,
            "eurosat",
            ("2750/<class>/<class>_1.jpg   (AnnualCrop/, Forest/, ...)", "split_zhou_EuroSAT.json"),
        ),
        CoOpDataset(
            "fgvc_aircraft",
            "FGVCAircraft",
            "fgvc_aircraft",
            "images",
            "a photo of a {}, a type of aircraft.",
            100,
            3334,
            3333,
            3333,
            "fgvcaircraft",
            (
                "images/<id>.jpg   (the data/ folder of fgvc-aircraft-2013b, renamed)",
                "variants.txt   (one variant name per line; line order = label order)",
                "images_variant_train.txt   (lines '<id> <variant name>')",
                "images_variant_val.txt",
                "images_variant_test.txt",
            ),
        ),
        CoOpDataset(
            "oxford_flowers",
            "OxfordFlowers",
            "oxford_flowers",
            "jpg",
            "a photo of a {}, a type of flower.",
            102,
            4093,
            1633,
            2463,
            "flowers102",
            ("jpg/image_00001.jpg", "cat_to_name.json", "imagelabels.mat", "split_zhou_OxfordFlowers.json"),
        ),
        CoOpDataset(
            "ucf101",
            "UCF101",
            "ucf101",
            "UCF-101-midframes",
            "a photo of a person doing {}.",
            101,
            7639,
            1898,
            3783,
            "ucf101",
            (
                "UCF-101-midframes/<Split_Camel_Case>/v_<CamelCase>_g01_c01.jpg   (Apply_Eye_Makeup/, ...)",
                "split_zhou_UCF101.json",
            ),
        ),
        CoOpDataset(
            "oxford_pets",
            "OxfordPets",
            "oxford_pets",
            "images",
            "a photo of a {}, a type of pet.",
            37,
            2944,
            736,
            3669,
            "oxfordpets",
            (
                "images/<Breed>_<n>.jpg   (Abyssinian_1.jpg, american_bulldog_10.jpg, ...)",
                "annotations/",
                "split_zhou_OxfordPets.json",
            ),
        ),
        CoOpDataset(
            "stanford_cars",
            "StanfordCars",
            "stanford_cars",
            "",
            "a photo of a {}.",
            196,
            6509,
            1635,
            8041,
            "stanfordcars",
            (
                "cars_train/00001.jpg",
                "cars_test/00001.jpg",
                "devkit/",
                "cars_test_annos_withlabels.mat",
                "split_zhou_StanfordCars.json   (paths relative to stanford_cars/, e.g. cars_train/00001.jpg)",
            ),
        ),
        CoOpDataset(
            "food101",
            "Food101",
            "food-101",
            "images",
            "a photo of {}, a type of food.",
            101,
            50500,
            20200,
            30300,
            "food101",
            ("images/<class>/<id>.jpg   (apple_pie/, baby_back_ribs/, ...)", "split_zhou_Food101.json"),
        ),
        CoOpDataset(
            "sun397",
            "SUN397",
            "sun397",
            "SUN397",
            "a photo of a {}.",
            397,
            15880,
            3970,
            19850,
            "sun397",
            (
                "SUN397/<letter>/<class>[/<qualifier>]/sun_<id>.jpg   (a/abbey/, c/church/outdoor/, ...)",
                "split_zhou_SUN397.json",
            ),
        ),
        CoOpDataset(
            "imagenet",
            "ImageNet",
            "imagenet",
            "images",
            "a photo of a {}.",
            1000,
            1281167,
            0,
            50000,
            "imagenet",
            (
                "images/train/<wnid>/<image>.JPEG   (1,000 folders n01440764/, ...)",
                "images/val/<wnid>/<image>.JPEG   (validation images sorted into the same 1,000 folders;"
                " used as the test set)",
                "classnames.txt   (lines '<wnid> <class name>')",
            ),
        ),
    )
}

LOADER_OPTIONS = {"allow_custom_split": bool, "skip_corrupt": bool, "allow_overlap": bool, "follow_symlinks": bool}


def _layout_error(d: CoOpDataset, problem: str, data_root: Path | str | None) -> DataError:
    where = f"under the data root ({data_root})" if data_root is not None else "under the data root"
    return DataError(f"Dataset '{d.name}': {problem}\nExpected layout {where}:\n{d.layout_text()}\n{d.instructions()}")


def resolve_dataset_dir(d: CoOpDataset, data_root: str | os.PathLike | None) -> Path:
    if data_root is None:
        data_root = os.environ.get(ENV_DATA) or None
    if data_root is None:
        raise _layout_error(
            d,
            f"no data root given. Pass --data-root DIR (or set ${ENV_DATA}) to the folder that holds {d.folder}/.",
            None,
        )
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise _layout_error(d, f"the data root {root} does not exist or is not a folder.", root)
    ds = root / d.folder
    if not ds.is_dir():
        raise _layout_error(d, f"dataset folder not found: {ds}", root)
    return ds


def _need_file(d: CoOpDataset, path: Path, what: str) -> None:
    if not path.is_file():
        raise _layout_error(d, f"{what} not found: {path}", path.parent.parent)


def _read_json_split(d: CoOpDataset, ds: Path) -> tuple[dict[str, Entries], dict[int, str], str]:
    path = ds / d.split_file
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"Dataset '{d.name}': split file {path} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}). Download the official file again. {d.instructions()}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Dataset '{d.name}': cannot read split file {path}: {exc}.") from exc
    if not isinstance(data, dict):
        raise DataError(
            f"Dataset '{d.name}': split file {path} must hold a JSON object with keys train, val, test; "
            f"found a {type(data).__name__}."
        )
    missing = [k for k in ("train", "val", "test") if not isinstance(data.get(k), list)]
    if missing:
        raise DataError(
            f"Dataset '{d.name}': split file {path} has no list for key(s) {', '.join(missing)}; "
            f'expected {{"train": [...], "val": [...], "test": [...]}} with entries '
            f"[relative_path, label, classname]."
        )
    prefix = f"{d.image_dir}/" if d.image_dir else ""
    splits: dict[str, Entries] = {}
    names: dict[int, str] = {}
    for split in ("train", "val", "test"):
        entries = []
        for i, item in enumerate(data[split]):
            where = f"{path.name} {split}[{i}]"
            if (
                not isinstance(item, list)
                or len(item) != 3
                or not isinstance(item[1], int)
                or isinstance(item[1], bool)
                or not isinstance(item[2], str)
            ):
                raise DataError(
                    f"Dataset '{d.name}': {where} is {item!r}; expected [relative_path, integer label, classname]."
                )
            rel = safe_relpath(d.name, item[0], where)
            label, cname = item[1], item[2]
            if label < 0:
                raise DataError(f"Dataset '{d.name}': {where} has negative label {label}.")
            if names.setdefault(label, cname) != cname:
                raise DataError(
                    f"Dataset '{d.name}': {where} gives label {label} the class name {cname!r}, but "
                    f"earlier entries call it {names[label]!r}."
                )
            entries.append((prefix + rel, label))
        splits[split] = entries
    return splits, names, str(path)


def _read_aircraft(d: CoOpDataset, ds: Path) -> tuple[dict[str, Entries], dict[int, str], str]:
    vpath = ds / "variants.txt"
    variants = [line.strip() for line in vpath.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(variants)) != len(variants):
        dup = sorted({v for v in variants if variants.count(v) > 1})
        raise DataError(f"Dataset '{d.name}': {vpath} lists variant(s) more than once: {', '.join(dup)}.")
    index = {v: i for i, v in enumerate(variants)}
    splits: dict[str, Entries] = {}
    for split in ("train", "val", "test"):
        spath = ds / f"images_variant_{split}.txt"
        entries = []
        for n, line in enumerate(spath.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(" ", 1)
            where = f"{spath.name} line {n}"
            if len(parts) != 2:
                raise DataError(f"Dataset '{d.name}': {where} is {line!r}; expected '<image id> <variant name>'.")
            imname, variant = parts[0], parts[1].strip()
            if variant not in index:
                raise DataError(f"Dataset '{d.name}': {where} names variant {variant!r}, which is not in {vpath.name}.")
            entries.append((f"{d.image_dir}/" + safe_relpath(d.name, imname + ".jpg", where), index[variant]))
        splits[split] = entries
    return splits, dict(enumerate(variants)), str(ds / "images_variant_*.txt")


IMAGE_EXTS = (".jpeg", ".jpg", ".png")


def _scan_class_folders(d: CoOpDataset, split_dir: Path, wnids: list[str], what: str) -> Entries:
    if not split_dir.is_dir():
        raise _layout_error(d, f"{what} folder not found: {split_dir}", split_dir.parent.parent.parent)
    found = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    index = {w: i for i, w in enumerate(wnids)}
    unknown = [f for f in found if f not in index]
    if unknown:
        raise DataError(
            f"Dataset '{d.name}': {split_dir} has folder(s) not listed in classnames.txt: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}."
        )
    entries = []
    rel_dir = split_dir.relative_to(split_dir.parent.parent)
    for w in found:
        files = sorted(
            e.name
            for e in os.scandir(split_dir / w)
            if e.is_file() and e.name.lower().endswith(IMAGE_EXTS) and not e.name.startswith(".")
        )
        entries.extend((f"{rel_dir.as_posix()}/{w}/{f}", index[w]) for f in files)
    return entries


def _read_imagenet(d: CoOpDataset, ds: Path) -> tuple[dict[str, Entries], dict[int, str], str]:
    cpath = ds / "classnames.txt"
    pairs = []
    for n, line in enumerate(cpath.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) != 2:
            raise DataError(f"Dataset '{d.name}': {cpath.name} line {n} is {line!r}; expected '<wnid> <class name>'.")
        pairs.append((parts[0], parts[1].strip()))
    pairs.sort()  # CoOp numbers the classes in the sorted order of the train folders
    wnids = [w for w, _ in pairs]
    train = _scan_class_folders(d, ds / d.image_dir / "train", wnids, "train")
    test = _scan_class_folders(d, ds / d.image_dir / "val", wnids, "val (test)")
    return {"train": train, "val": [], "test": test}, {i: c for i, (_, c) in enumerate(pairs)}, str(cpath)


def _check_official(d: CoOpDataset, splits: dict[str, Entries], n_classes: int, source: str, allow: bool) -> bool:
    """Compare with CoOp's figures; returns whether they match (raises unless ``allow``)."""
    found = (n_classes, len(splits["train"]), len(splits["val"]), len(splits["test"]))
    expected = (d.classes, d.train, d.val, d.test)
    if found == expected:
        return True
    if not allow:
        raise DataError(
            f"Dataset '{d.name}': the split does not match CoOp's official {d.coop_name} split: expected "
            f"{expected[0]:,} classes and train/val/test {expected[1]:,}/{expected[2]:,}/{expected[3]:,} images, "
            f"found {found[0]:,} classes and {found[1]:,}/{found[2]:,}/{found[3]:,} in {source}. Use the official "
            f"split file ({DATASETS_URL}#{d.anchor}), or pass "
            f"--allow-custom-split to accept this split (results are then not comparable to published numbers)."
        )
    return False


def _index_files(d: CoOpDataset) -> list[tuple[str, str]]:
    """(file under the dataset folder, what it is) that the readers open first."""
    if d.name == "fgvc_aircraft":
        return [
            ("variants.txt", "variants file"),
            *((f"images_variant_{split}.txt", "split file") for split in ("train", "val", "test")),
        ]
    if d.name == "imagenet":
        return [("classnames.txt", "class-name file")]
    return [(d.split_file, "split file")]


def check_layout(name: str, data_root: str | os.PathLike | None = None) -> Path:
    """Cheap check that the dataset folder and its split/index files exist; returns the folder.

    ``albench run`` calls it for every CoOp dataset of a grid before any run
    starts, so a missing tree fails at once, with the layout, and nothing is
    written to the results directory; ``load_coop`` starts with it.
    """
    d = COOP_SPLITS[name]
    ds = resolve_dataset_dir(d, data_root)
    for rel, what in _index_files(d):
        _need_file(d, ds / rel, what)
    return ds


def load_coop(name: str, data_root: str | os.PathLike | None = None, **options) -> Task:
    d = COOP_SPLITS[name]
    opts = check_options(name, options, LOADER_OPTIONS)
    allow, skip = opts.get("allow_custom_split", False), opts.get("skip_corrupt", False)
    ds = check_layout(name, data_root)
    if name == "fgvc_aircraft":
        splits, names, source = _read_aircraft(d, ds)
    elif name == "imagenet":
        splits, names, source = _read_imagenet(d, ds)
    else:
        splits, names, source = _read_json_split(d, ds)
    n = len(names)
    if sorted(names) != list(range(n)):
        gaps = sorted(set(range(max(names) + 1)) - set(names)) if names else []
        raise DataError(
            f"Dataset '{name}': labels in {source} must be 0..C-1 with every label used; "
            f"label(s) {', '.join(map(str, gaps[:10]))} never appear."
        )
    raw = [names[i] for i in range(n)]
    official = _check_official(d, splits, n, source, allow)
    check_train_coverage(name, splits["train"], raw, source)
    hint = f"Expected layout:\n{d.layout_text()}\n{d.instructions()}"
    meta = {
        "suite": "coop",
        "dataset_dir": str(ds),
        "split_source": source,
        "official_split": official,
        "coop_classnames": raw,
        "val_used": False,
        "description": f"CoOp {d.coop_name}: pool = train split, evaluation = test split, val loaded but unused",
    }
    return build_task(
        name,
        ds,
        splits,
        [c.replace("_", " ") for c in raw],
        d.template,
        hint,
        skip_corrupt=skip,
        allow_overlap=opts.get("allow_overlap", False),
        follow_symlinks=opts.get("follow_symlinks", False),
        meta=meta,
        check_after_skip=lambda s: check_train_coverage(name, s["train"], raw, source),
    )


# The dataset loaders the ``albench.datasets`` entry points in pyproject.toml name, one per CoOp dataset.
caltech101, dtd, eurosat = partial(load_coop, "caltech101"), partial(load_coop, "dtd"), partial(load_coop, "eurosat")
fgvc_aircraft, oxford_flowers = partial(load_coop, "fgvc_aircraft"), partial(load_coop, "oxford_flowers")
ucf101, oxford_pets = partial(load_coop, "ucf101"), partial(load_coop, "oxford_pets")
stanford_cars, food101 = partial(load_coop, "stanford_cars"), partial(load_coop, "food101")
sun397, imagenet = partial(load_coop, "sun397"), partial(load_coop, "imagenet")
