"""Run records: one JSON file per finished run, written atomically.

A record is written to a temp file in the same directory, fsynced, then
renamed over its final name, so a reader sees either no record or a whole
one. Failed runs write a separate failure record (error and traceback) under
``failed/``; a later success removes it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import AlbenchError

SCHEMA = 1
REQUIRED = ("schema", "run_id", "config_hash", "config", "strategy", "adapter", "dataset", "seed", "rounds")


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
            json.dump(data, f, indent=1, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
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


def failure_path(results_dir: Path, record_path: Path) -> Path:
    return Path(results_dir) / "failed" / Path(record_path).relative_to(results_dir)
