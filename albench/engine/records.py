"""Run records: one JSON file per finished run, written atomically.

A record is written to a temp file in the same directory, fsynced, then
renamed over its final name, so a reader sees either no record or a whole
one. Failed runs write a separate failure record (error and traceback) under
``failed/``; a later success removes it.

A process killed mid-write leaves at most a ``.<name>.*.tmp`` file next to the
record; the next run of the same record removes it (``remove_stale_temps``,
called while holding the run's lock). Test hook: ``ALBENCH_TEST_SLOW_WRITE``
(seconds) sleeps between writing the temp file and renaming it, so crash tests
can kill a process inside a record write. It is read only by tests.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator

from albench.api.errors import AlbenchError

SCHEMA = 1
TEST_SLOW_WRITE = "ALBENCH_TEST_SLOW_WRITE"
REQUIRED = ("schema", "run_id", "config_hash", "config", "strategy", "adapter", "dataset", "seed", "rounds")


def json_safe(obj):
    """Non-finite floats (a user's lr=nan, say) as strings, so every file is strict JSON."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path: Path, data: dict) -> None:
    """Write JSON so that ``path`` is either absent/old or complete, never partial."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise AlbenchError(f"Cannot write results to {path.parent}: {exc.strerror}. "
                           f"Check the directory's permissions and free space, or pass --results-dir.") from exc
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json_safe(data), f, indent=1, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; records are ordinary files
        slow = os.environ.get(TEST_SLOW_WRITE)
        if slow:  # test hook: widen the window between write and rename
            time.sleep(float(slow))
        os.replace(tmp, path)
    except OSError as exc:
        raise AlbenchError(f"Writing {path} failed: {exc.strerror}; no partial record was left.") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_files(directory: Path, name: str | None = None) -> list[Path]:
    """Temp files left by interrupted ``atomic_write_json`` calls (for ``name``, or all)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f".{name}.*.tmp" if name else ".*.tmp"))


def remove_stale_temps(path: Path) -> int:
    """Delete temp files of ``path`` left by a killed writer. Call only while holding the run's lock."""
    n = 0
    for t in temp_files(Path(path).parent, Path(path).name):
        t.unlink(missing_ok=True)
        n += 1
    return n


def read_record(path: Path) -> dict | None:
    """A valid record, or None when the file is unreadable, truncated or not a record."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED) or data.get("schema") != SCHEMA:
        return None
    return data


def iter_records(results_dir: Path) -> Iterator[tuple[Path, dict]]:
    """All valid run records below ``results_dir`` (failure records and temp files excluded)."""
    root = Path(results_dir)
    if not root.exists():
        return
    for p in sorted(root.rglob("*.json")):
        if p.name.startswith(".") or "failed" in p.relative_to(root).parts:
            continue
        rec = read_record(p)
        if rec is not None:
            yield p, rec
        else:
            warnings.warn(f"{p} is not a valid run record (truncated or corrupt); ignored. Running its grid again "
                          f"rebuilds it.", stacklevel=2)


def failure_path(results_dir: Path, record_path: Path) -> Path:
    return Path(results_dir) / "failed" / Path(record_path).relative_to(results_dir)
