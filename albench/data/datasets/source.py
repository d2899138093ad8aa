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


DECODER = "rgb-v2"  # enters every file source's fingerprint: a change of conversion never reuses old features
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as an image viewer or a browser does


def to_rgb(img):
    """Any PIL image as 8-bit RGB, converted by what its pixels mean rather than by truncation.

    * 16- and 32-bit integer grayscale (``I;16*``, ``I``): scaled to 8 bits by the type's range (a plain
      ``convert("RGB")`` clips every value above 255 and a 16-bit PNG decodes to white);
    * float grayscale (``F``): values in [0, 1] scaled by 255, otherwise clipped to [0, 255];
    * alpha (``RGBA``, ``LA``, ``PA``, palette with transparency): composited over white; dropping the alpha
      would show whatever colour the transparent pixels happen to store (often black);
    * CMYK: ``R = 255 (1 - C)(1 - K)`` (and so on), the standard separation formula;
    * everything else (``1``, ``L``, ``P``, ``YCbCr``, ``RGB``): PIL's own conversion.
    """
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img)
        if a.dtype.kind == "u" and a.dtype.itemsize == 2 or mode.startswith("I;16"):
            a8 = (a.astype(np.float64) / 65535.0 * 255.0).round()
        else:  # 32-bit signed: 16-bit data stored as I (PNG readers do this), else its own range
            a = a.astype(np.float64)
            top = 65535.0 if a.max(initial=0) > 255 else 255.0
            a8 = (np.clip(a, 0, top) / top * 255.0).round()
        return Image.fromarray(a8.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
        return Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L").convert("RGB")
    if mode == "CMYK":
        c, m, y, k = (np.asarray(img, dtype=np.float64)[..., i] / 255.0 for i in range(4))
        rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], -1) * 255.0
        return Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def preprocess(img, size: int) -> np.ndarray:
    """PIL image -> uint8 (size, size, 3): RGB (``to_rgb``), bicubic resize of the short side to ``size``,
    centre crop."""
    from PIL import Image

    img = to_rgb(img)
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


def _unreadable(path, exc: Exception) -> DataError | None:
    """A DataError for problems that are not corruption (permission, size, a folder), or None."""
    from PIL import Image

    if isinstance(exc, PermissionError):
        return DataError(f"Cannot read image {path}: permission denied. Make the file readable (chmod a+r).")
    if isinstance(exc, IsADirectoryError):
        return DataError(f"Cannot read image {path}: it is a folder, not an image file.")
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(
            f"Image {path} is too large to decode safely ({exc}). Downscale it, or leave it out of the split."
        )
    if isinstance(exc, MemoryError):
        return DataError(f"Image {path} is too large to decode in the available memory. Downscale it.")
    return None


def decode_file(path: str | Path, size: int) -> np.ndarray:
    """Decode one image file; any failure is a DataError naming the file and what is wrong with it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return preprocess(img, size)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        named = _unreadable(path, exc)
        if named is not None:
            raise named from exc
        raise DataError(
            f"Cannot decode image {path}: {type(exc).__name__}: {exc}. The file is corrupt or not an "
            f"image; replace it (re-extract the dataset archive), or pass --skip-corrupt-images to "
            f"leave it out of the task (the skipped files are recorded in the run record)."
        ) from exc


def check_decodable(path: str | Path) -> str | None:
    """None if the file decodes completely, else the reason it does not (corruption only: a permission or
    size problem raises a DataError that names it, so it is never skipped as "corrupt")."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
        return None
    except Exception as exc:
        named = _unreadable(path, exc)
        if named is not None:
            raise named from exc
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

            h = hashlib.sha256(DECODER.encode())
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
