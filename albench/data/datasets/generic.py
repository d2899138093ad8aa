"""Bring-your-own datasets: ``imagefolder`` and ``csv`` task types.

``imagefolder``: ``<dir>/train/<class>/<image>`` and ``<dir>/test/<class>/<image>``
(optional ``<dir>/val/...``); classes are the train folders in sorted order,
named after the folder with ``_`` replaced by a space.

``csv``: ``<dir>/train.csv`` and ``<dir>/test.csv`` (optional ``val.csv``) with a
header row and columns ``path`` (relative to ``<dir>``) and ``label`` (the class
name); classes are in sorted order, or in the order of ``<dir>/classnames.txt``
(one name per line) when that file exists.

``<dir>`` is the option ``path`` (relative paths are resolved against the data
root), else the data root itself. The zero-shot template is the option
``template`` (default ``"a photo of a {}."``).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from albench.api.errors import DataError
from albench.data.tasks import Task
from albench.data.datasets.build import Entries, build_task, check_options, check_train_coverage, safe_relpath

DEFAULT_TEMPLATE = "a photo of a {}."
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GENERIC_OPTIONS = {
    "path": str,
    "template": str,
    "skip_corrupt": bool,
    "allow_custom_split": bool,
    "allow_overlap": bool,
    "follow_symlinks": bool,
}

IMAGEFOLDER_LAYOUT = (
    "<dir>/train/<class>/<image>.jpg   (one folder per class; names become class names)\n"
    "<dir>/test/<class>/<image>.jpg\n<dir>/val/<class>/<image>.jpg   (optional)"
)
CSV_LAYOUT = (
    "<dir>/train.csv   (header 'path,label'; path relative to <dir>, label = class name)\n"
    "<dir>/test.csv\n<dir>/val.csv   (optional)\n<dir>/classnames.txt   (optional: class order, one per line)"
)


def _dataset_dir(kind: str, data_root, opts: dict, layout: str) -> Path:
    path = opts.get("path")
    if path is None and data_root is None:
        data_root = os.environ.get("ALBENCH_DATA") or None
    if path is None and data_root is None:
        raise DataError(
            f"Dataset '{kind}': no folder given. Pass --data-root DIR or --dataset-opt path=DIR.\n"
            f"Expected layout:\n{layout}"
        )
    base = Path(data_root).expanduser() if data_root is not None else Path.cwd()
    d = base / Path(path).expanduser() if path is not None else base
    if not d.is_dir():
        raise DataError(f"Dataset '{kind}': folder not found: {d}\nExpected layout:\n{layout}")
    return d


def _template(kind: str, opts: dict) -> str:
    t = opts.get("template", DEFAULT_TEMPLATE)
    if t.count("{}") != 1:
        raise DataError(
            f"Dataset '{kind}': template {t!r} must contain '{{}}' exactly once (where the class name "
            f"goes), e.g. {DEFAULT_TEMPLATE!r}."
        )
    try:
        t.format("x")
    except (KeyError, IndexError, ValueError) as exc:  # "{color}", "{0}", a lone "{"
        raise DataError(
            f"Dataset '{kind}': template {t!r} has braces other than the one '{{}}' for the class name "
            f"({type(exc).__name__}: {exc}); write a literal brace as '{{{{' or '}}}}'."
        ) from None
    return t


def check_generic(kind: str, data_root=None, options: dict | None = None) -> tuple[Path, str, dict]:
    """Options, folder, template and the train/test splits of an imagefolder or csv dataset, reading no image.

    The preflight calls it for every such dataset of a grid before any run; the loaders start with it.
    Returns (dataset folder, template, checked options).
    """
    layout = IMAGEFOLDER_LAYOUT if kind == "imagefolder" else CSV_LAYOUT
    opts = check_options(kind, dict(options or {}), GENERIC_OPTIONS)
    root = _dataset_dir(kind, data_root, opts, layout)
    template = _template(kind, opts)
    for split in ("train", "test"):
        if kind == "imagefolder" and not (root / split).is_dir():
            raise DataError(
                f"Dataset 'imagefolder': split folder not found: {root / split}\nExpected layout:\n{layout}"
            )
        if kind == "csv" and not (root / f"{split}.csv").is_file():
            raise DataError(
                f"Dataset 'csv': split file not found: {root / (split + '.csv')}\nExpected layout:\n{layout}"
            )
    return root, template, opts


def load_imagefolder(data_root=None, **options) -> Task:
    root, template, opts = check_generic("imagefolder", data_root, options)
    folders = {
        s: sorted(e.name for e in os.scandir(root / s) if e.is_dir() and not e.name.startswith("."))
        for s in ("train", "val", "test")
        if (root / s).is_dir()
    }
    classes = folders["train"]
    if not classes:
        raise DataError(
            f"Dataset 'imagefolder': {root / 'train'} has no class folders.\nExpected layout:\n{IMAGEFOLDER_LAYOUT}"
        )
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, Entries] = {}
    for s, names in folders.items():
        extra = [n for n in names if n not in index]
        if extra:
            raise DataError(
                f"Dataset 'imagefolder': {root / s} has class folder(s) with no train folder: "
                f"{', '.join(extra)}. Valid classes: {', '.join(classes)}."
            )
        splits[s] = [
            (f"{s}/{c}/{f}", index[c])
            for c in names
            for f in sorted(os.listdir(root / s / c))
            if f.lower().endswith(IMAGE_EXTS) and not f.startswith(".")
        ]
    check_train_coverage("imagefolder", splits["train"], classes, str(root / "train"))
    hint = f"Expected layout:\n{IMAGEFOLDER_LAYOUT}"
    return build_task(
        "imagefolder",
        root,
        splits,
        [c.replace("_", " ") for c in classes],
        template,
        hint,
        skip_corrupt=opts.get("skip_corrupt", False),
        allow_overlap=opts.get("allow_overlap", False),
        follow_symlinks=opts.get("follow_symlinks", False),
        meta={"suite": "imagefolder", "dataset_dir": str(root), "folders": classes},
        check_after_skip=lambda sp: check_train_coverage("imagefolder", sp["train"], classes, str(root / "train")),
    )


def _read_text(path: Path) -> str:
    """UTF-8 text (a leading byte-order mark, as spreadsheet programs write, is dropped); other encodings are
    a DataError naming the file, the line and the byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"Dataset 'csv': {path} is not UTF-8 text (line {line}, byte 0x{raw[exc.start]:02x}). Save it "
            f"as UTF-8 (e.g. in a spreadsheet: CSV UTF-8)."
        ) from None


def _read_csv(root: Path, split: str) -> list[tuple[str, str]]:
    import io

    path = root / f"{split}.csv"
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = cols
    if "path" not in cols or "label" not in cols:
        raise DataError(
            f"Dataset 'csv': {path} needs a header with columns 'path' and 'label'; found "
            f"{', '.join(cols) if cols else 'no header'}.\nExpected layout:\n{CSV_LAYOUT}"
        )
    rows = []
    for n, row in enumerate(reader, 2):
        label = (row.get("label") or "").strip()
        if not label:
            raise DataError(f"Dataset 'csv': {path.name} line {n} has an empty label.")
        rows.append((safe_relpath("csv", row.get("path"), f"{path.name} line {n}"), label))
    return rows


def load_csv(data_root=None, **options) -> Task:
    root, template, opts = check_generic("csv", data_root, options)
    rows = {s: _read_csv(root, s) for s in ("train", "val", "test") if (root / f"{s}.csv").is_file()}
    cfile = root / "classnames.txt"
    if cfile.is_file():
        classes = [line.strip() for line in _read_text(cfile).splitlines() if line.strip()]
    else:
        classes = sorted({label for r in rows.values() for _, label in r})
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, Entries] = {}
    for s, r in rows.items():
        unknown = sorted({label for _, label in r if label not in index})
        if unknown:
            raise DataError(
                f"Dataset 'csv': {s}.csv uses label(s) {', '.join(map(repr, unknown))} not in "
                f"{cfile.name}. Valid classes: {', '.join(classes)}."
            )
        splits[s] = [(p, index[label]) for p, label in r]
    check_train_coverage("csv", splits["train"], classes, str(root / "train.csv"))
    hint = f"Expected layout:\n{CSV_LAYOUT}"
    return build_task(
        "csv",
        root,
        splits,
        [c.replace("_", " ") for c in classes],
        template,
        hint,
        skip_corrupt=opts.get("skip_corrupt", False),
        allow_overlap=opts.get("allow_overlap", False),
        follow_symlinks=opts.get("follow_symlinks", False),
        meta={"suite": "csv", "dataset_dir": str(root)},
        check_after_skip=lambda sp: check_train_coverage("csv", sp["train"], classes, str(root / "train.csv")),
    )
