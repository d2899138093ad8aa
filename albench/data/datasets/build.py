"""Shared checks for file-based tasks: safe relative paths, files present, one label per image,
no train/test overlap, no symlink out of the dataset folder, corrupt images, options.

Every loader (CoOp layouts, imagefolder, csv) ends in ``build_task``: paths
are checked not to leave the dataset folder, every file is stat-ed (missing
or empty files are reported before anything runs), optionally every image is
decoded once to drop corrupt ones (``skip_corrupt``), and the splits become
``FileSource``s.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from albench.api.errors import DataError
from albench.data.tasks import Split, Task
from albench.data.datasets.source import FileSource, check_decodable, decode_workers

SPLITS = ("train", "val", "test")
MAX_LISTED = 5  # files named in an error message before "... and N more"

# (path relative to the dataset folder, label)
Entries = list[tuple[str, int]]


def check_options(dataset: str, options: dict, allowed: dict[str, type]) -> dict:
    """Validate loader options by name and type; returns them with defaults filled in."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(
            f"Unknown option(s) {', '.join(repr(u) for u in unknown)} for dataset '{dataset}'. "
            f"Valid options: {', '.join(sorted(allowed))}."
        )
    out = {}
    for key, typ in allowed.items():
        if key not in options or options[key] is None:
            continue
        val = options[key]
        if typ is bool and not isinstance(val, bool):
            raise DataError(f"Option {key}={val!r} for dataset '{dataset}' must be true or false.")
        if typ is str and not isinstance(val, str):
            raise DataError(f"Option {key}={val!r} for dataset '{dataset}' must be a string.")
        out[key] = val
    return out


def safe_relpath(dataset: str, raw: object, where: str) -> str:
    """A split-file path as a normalised POSIX path that cannot leave the dataset folder."""
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(f"Dataset '{dataset}': {where}: image path {raw!r} is not a non-empty string.")
    text = raw.replace("\\", "/")
    p = PurePosixPath(text)
    if p.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise DataError(
            f"Dataset '{dataset}': {where}: image path {raw!r} is absolute; split files must use paths "
            f"relative to the dataset folder."
        )
    if ".." in p.parts:
        raise DataError(
            f"Dataset '{dataset}': {where}: image path {raw!r} contains '..' and would leave the dataset "
            f"folder; split files must use paths inside it."
        )
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts:
        raise DataError(f"Dataset '{dataset}': {where}: image path {raw!r} names no file.")
    return "/".join(parts)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_LISTED])
    return shown + (f" ... and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else "")


def stat_files(
    dataset: str, base: Path, relpaths: list[str], layout_hint: str, allow_empty: bool = False
) -> np.ndarray:
    """Sizes of all files; a DataError names the missing and the empty ones."""
    sizes = np.empty(len(relpaths), dtype=np.int64)
    missing, empty = [], []
    for i, rel in enumerate(relpaths):
        try:
            st = os.stat(base / rel)
        except OSError:
            missing.append(str(base / rel))
            sizes[i] = -1
            continue
        sizes[i] = st.st_size
        if st.st_size == 0:
            empty.append(str(base / rel))
    if missing:
        raise DataError(
            f"Dataset '{dataset}': {len(missing)} of {len(relpaths)} image(s) listed in the split are "
            f"missing: {_listing(missing)}.\n{layout_hint}"
        )
    if empty and not allow_empty:  # with skip_corrupt they are dropped with the undecodable ones
        raise DataError(
            f"Dataset '{dataset}': {len(empty)} image file(s) are empty (0 bytes), so corrupt: "
            f"{_listing(empty)}. Replace them (re-extract the dataset archive), or pass "
            f"--skip-corrupt-images to leave them out."
        )
    return sizes


def find_corrupt(base: Path, relpaths: list[str]) -> dict[str, str]:
    """relpath -> reason, for every file that does not decode completely (decoded in parallel)."""
    from tqdm.auto import tqdm

    def check(rel: str):
        return rel, check_decodable(base / rel)

    bad = {}
    with ThreadPoolExecutor(min(decode_workers(), max(1, len(relpaths)))) as pool:
        for rel, why in tqdm(
            pool.map(check, relpaths),
            total=len(relpaths),
            desc="verifying images",
            unit="img",
            leave=False,
            disable=None if len(relpaths) >= 512 else True,
        ):
            if why is not None:
                bad[rel] = why
    return bad


def check_duplicates(dataset: str, splits: dict[str, Entries], classnames: list[str]) -> dict[str, Entries]:
    """One entry per path and split: a path listed twice with different labels is an error (which label
    is true?); listed twice with the same label it is kept once (a duplicate row would count twice)."""
    out = {}
    for split, entries in splits.items():
        label_of: dict[str, int] = {}
        conflicts: dict[str, set] = {}
        kept = []
        for p, y in entries:
            if p not in label_of:
                label_of[p] = y
                kept.append((p, y))
            elif label_of[p] != y:
                conflicts.setdefault(p, {label_of[p]}).add(y)
        if conflicts:
            shown = [
                f"{p} ({' vs '.join(repr(classnames[y]) for y in sorted(ys))})" for p, ys in sorted(conflicts.items())
            ]
            raise DataError(
                f"Dataset '{dataset}': {len(conflicts)} image(s) listed in the {split} split with "
                f"different labels: {_listing(shown)}. Each image needs exactly one label; fix the "
                f"split file."
            )
        out[split] = kept
    return out


def check_overlap(dataset: str, base: Path, splits: dict[str, Entries], allow: bool) -> None:
    """The pool (train) and the test split share no image, by path or by content (``allow_overlap`` opts in)."""
    if allow or "test" not in splits:
        return
    from albench.data.content import file_digests

    train = [p for p, _ in splits["train"]]
    test = [p for p, _ in splits["test"]]
    same = sorted(set(train) & set(test))
    if not same:
        d_train = dict(zip(file_digests([base / p for p in train]), train))
        same = sorted(
            f"{p} = {d_train[d]}" for p, d in zip(test, file_digests([base / p for p in test])) if d in d_train
        )
    if same:
        raise DataError(
            f"Dataset '{dataset}': {len(same)} test image(s) are also in the train split (the pool), by "
            f"path or identical content: {_listing(same)}. Test accuracy would count images the model "
            f"was trained on. Remove them from one split, or pass --dataset-opt allow_overlap=true to "
            f"accept the overlap (recorded in the run's configuration)."
        )


def check_symlinks(dataset: str, base: Path, relpaths: list[str], follow: bool) -> None:
    """Images reached through a symlink that leaves the dataset folder are refused (``follow_symlinks`` opts in)."""
    if follow:
        return
    root = os.path.realpath(base)
    outside = []
    for rel in relpaths:
        real = os.path.realpath(base / rel)
        if real != root and not real.startswith(root + os.sep):
            outside.append(f"{rel} -> {real}")
    if outside:
        raise DataError(
            f"Dataset '{dataset}': {len(outside)} image(s) are symlinks that leave the dataset folder "
            f"{base}: {_listing(sorted(outside))}. Copy the images into the folder, or pass --dataset-opt "
            f"follow_symlinks=true to follow them."
        )


def build_task(
    name: str,
    base: Path,
    splits: dict[str, Entries],
    classnames: list[str],
    template: str,
    layout_hint: str,
    skip_corrupt: bool = False,
    meta: dict | None = None,
    check_after_skip: Callable[[dict[str, Entries]], None] | None = None,
    allow_overlap: bool = False,
    follow_symlinks: bool = False,
) -> Task:
    """Stat every file, check labels, overlap and symlinks, optionally drop corrupt images, and assemble
    the Task (pool = train split)."""
    meta = dict(meta or {})
    splits = check_duplicates(name, splits, classnames)
    size_of: dict[str, int] = {}
    for split, entries in splits.items():
        rel = [p for p, _ in entries]
        size_of.update(zip(rel, stat_files(name, base, rel, layout_hint, allow_empty=skip_corrupt).tolist()))
    check_symlinks(name, base, sorted(size_of), follow_symlinks)
    check_overlap(name, base, splits, allow_overlap)
    skipped: list[dict] = []
    if skip_corrupt:
        all_paths = sorted({p for entries in splits.values() for p, _ in entries})
        bad = find_corrupt(base, all_paths)
        if bad:
            for split in list(splits):
                kept = []
                for p, y in splits[split]:
                    if p in bad:
                        skipped.append({"split": split, "path": p, "error": bad[p]})
                    else:
                        kept.append((p, y))
                splits[split] = kept
        if check_after_skip is not None:
            check_after_skip(splits)
    meta["skipped_images"] = skipped
    sources = {}
    for split, entries in splits.items():
        rel = [p for p, _ in entries]
        sizes = np.asarray([size_of[p] for p in rel], dtype=np.int64)
        sources[split] = Split(
            FileSource(base, rel, sizes, desc=f"decoding {name}/{split}"),
            np.asarray([y for _, y in entries], dtype=np.int64),
        )
    val = sources.get("val")
    if val is not None and len(val) == 0:
        val = None  # e.g. ImageNet, whose val images are the test set
    return Task(name, classnames, template, sources["train"], sources["test"], val, meta=meta)


def check_train_coverage(dataset: str, train: Entries, classnames: list[str], where: str) -> None:
    """Every class needs at least one training (pool) image."""
    counts = np.bincount(np.asarray([y for _, y in train], dtype=np.int64), minlength=len(classnames))
    empty = [classnames[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"Dataset '{dataset}': {len(empty)} class(es) have no training images in {where}: "
            f"{_listing(empty)}. Every class needs at least one image in the train split (the pool)."
        )
