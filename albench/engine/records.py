"""Run records: one JSON file per finished run, written atomically.

A record is written to a temp file in the same directory, fsynced, then
renamed over its final name, so a reader sees either no record or a whole
one. Failed runs write a separate failure record (error and traceback) under
``failed/``; a later success removes it.

All writes go through the one atomic writer (``albench.api.atomic``). A process
killed mid-write leaves at most a ``.<name>.*.tmp`` file next to the record; the
next run of the same record removes it (``remove_stale_temps``, called while
holding the run's lock).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterator

from albench.api import atomic
from albench.api.errors import AlbenchError

SCHEMA = 1
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
    """Write a record (strict JSON) so that ``path`` is either absent/old or complete, never partial."""
    text = json.dumps(json_safe(data), indent=1, sort_keys=False, allow_nan=False) + "\n"
    try:
        atomic.atomic_write(path, text)
    except atomic.AtomicWriteError as exc:
        if exc.stage == "open":
            raise AlbenchError(f"Cannot write results to {exc.path.parent}: {exc.strerror}. Check the directory's "
                               f"permissions and free space, or pass --results-dir.") from exc
        raise AlbenchError(f"Writing {path} failed: {exc.strerror}; no partial record was left.") from exc


def temp_files(directory: Path, name: str | None = None) -> list[Path]:
    """Temp files left by interrupted atomic writes (for ``name``, or all) in ``directory``."""
    directory = Path(directory)
    if name is not None:
        return atomic.stale_temps(directory / name)
    return sorted(directory.glob(".*.tmp")) if directory.is_dir() else []


def remove_stale_temps(path: Path) -> int:
    """Delete temp files of ``path`` left by a killed writer. Call only while holding the run's lock."""
    return atomic.remove_stale_temps(path)


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
