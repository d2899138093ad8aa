"""Image files on disk as an ``ImageSource``, with CLIP's evaluation preprocessing.

``preprocess`` is the reference transform of CLIP and CoOp at test time
(torchvision ``Resize(size, bicubic)`` on the short side, then
``CenterCrop(size)``), done with PIL so the pixels are the ones torchvision
produces for a PIL image; normalisation (OpenAI mean/std) is the backbone's
``normalize_pixels``. ``FileSource.load`` decodes a batch in a thread pool
(PIL releases the GIL while decoding and resizing) with a progress bar for
large batches.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from albench.api.errors import DataError

ENV_WORKERS = "ALBENCH_DECODE_WORKERS"
PROGRESS_MIN = 512  # batches at least this large show a progress bar (when stderr is a terminal)


def decode_workers() -> int:
    env = os.environ.get(ENV_WORKERS)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise DataError(f"{ENV_WORKERS}={env!r} is not an integer number of decoding threads.") from None
        if n < 1:
            raise DataError(f"{ENV_WORKERS}={env!r} must be at least 1.")
        return n
    return max(1, min(8, os.cpu_count() or 1))


def preprocess(img, size: int) -> np.ndarray:
    """PIL image -> uint8 (size, size, 3): RGB, bicubic resize of the short side to ``size``, centre crop."""
    from PIL import Image

    img = img.convert("RGB")
    w, h = img.size
    if w <= h:  # torchvision Resize(int): the long side is truncated, not rounded
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    if (nw, nh) != (size, size):
        img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8)


def decode_file(path: str | Path, size: int) -> np.ndarray:
    """Decode one image file; any failure is a DataError naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return preprocess(img, size)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        raise DataError(f"Cannot decode image {path}: {type(exc).__name__}: {exc}. The file is corrupt or not an "
                        f"image; replace it (re-extract the dataset archive), or pass --skip-corrupt-images to "
                        f"leave it out of the task (the skipped files are recorded in the run record).") from exc


def check_decodable(path: str | Path) -> str | None:
    """None if the file decodes completely, else the reason it does not."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


class FileSource:
    """A list of image files (absolute paths) with their sizes in bytes, as recorded when the split was loaded.

    ``fingerprint()`` hashes the paths relative to ``root`` and each file's content
    (so it is independent of where the data root is mounted, and two trees with equal
    names and sizes but different pixels differ); digests are cached by path, size and
    times, so an unchanged tree is not re-read. ``load(indices, size)`` decodes with
    CLIP's eval preprocessing.
    """

    def __init__(self, root: str | Path, relpaths: Sequence[str], sizes: Sequence[int], desc: str = "decoding"):
        if len(relpaths) != len(sizes):
            raise ValueError(f"{len(relpaths)} paths but {len(sizes)} sizes")
        self.root = Path(root)
        self.relpaths = list(relpaths)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.desc = desc
        self._fp: str | None = None

    def __len__(self) -> int:
        return len(self.relpaths)

    def path(self, i: int) -> Path:
        return self.root / self.relpaths[i]

    def fingerprint(self) -> str:
        """Hash of every file's relative path and content (``albench.data.content``; unchanged files are not re-read)."""
        if self._fp is None:
            from albench.data.content import file_digests

            h = hashlib.sha256()
            for rel, digest in zip(self.relpaths, file_digests([self.path(i) for i in range(len(self))])):
                h.update(f"{rel}\0{digest}\n".encode())
            self._fp = h.hexdigest()[:16]
        return self._fp

    def load(self, indices: np.ndarray, size: int, progress: bool | None = None) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), size, size, 3), dtype=np.uint8)
        if len(idx) == 0:
            return out
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"image index out of range 0..{len(self) - 1}")
        paths = [self.path(int(i)) for i in idx]

        def work(j: int) -> None:
            out[j] = decode_file(paths[j], size)

        workers = min(decode_workers(), len(idx))
        show = progress if progress is not None else len(idx) >= PROGRESS_MIN
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(idx), desc=self.desc, unit="img", leave=False, disable=None)
        try:
            if workers == 1:
                for j in range(len(idx)):
                    work(j)
                    if bar is not None:
                        bar.update(1)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    # map keeps order; the first failing image raises here with its file named
                    for _ in pool.map(work, range(len(idx))):
                        if bar is not None:
                            bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return out
