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
            raise AlbenchError(
                f"Cannot write results to {exc.path.parent}: {exc.strerror}. Check the directory's "
                f"permissions and free space, or choose another {{field}}.",
                field="results_dir",
            ) from exc
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
    if accuracy_problem(data):
        return None
    return data


def accuracy_problem(rec: dict) -> str | None:
    """Why a record's accuracies cannot be tabulated (missing, not a number, nan or inf), or None."""
    import math

    values = [("zero-shot", rec.get("zero_shot_accuracy"))] if "zero_shot_accuracy" in rec else []
    values += [
        (f"round {r.get('round', i + 1)}", r.get("accuracy"))
        for i, r in enumerate(rec.get("rounds") or [])
        if isinstance(r, dict)
    ]
    for where, v in values:
        if v is None and where == "zero-shot":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"test accuracy {v!r} in {where} is not a finite number"
    return None


def check_record(rec: dict) -> None:
    """Refuse to write a finished-run record whose accuracies are not finite numbers (an empty test split
    gives nan): the run fails with the reason instead of poisoning every table of the results directory."""
    why = accuracy_problem(rec)
    if why:
        raise AlbenchError(
            f"Run {rec.get('run_id', '?')} on '{rec.get('dataset', '?')}': {why}; the record was not "
            f"written. Check that the dataset's test split has images."
        )


def iter_records(results_dir: Path) -> Iterator[tuple[Path, dict]]:
    """All valid run records below ``results_dir`` (failure records and temp files excluded), each run once.

    A run is identified by its run id and configuration hash. A copy of a record elsewhere under
    ``results_dir`` (a backup folder, a file copied by hand) is counted once, with a warning naming both
    files: the copy at the run's own path (``<dataset>/<run id>.json``) wins, else the first in path order.
    """
    root = Path(results_dir)
    if not root.exists():
        return
    found: dict[tuple, list[tuple[Path, dict]]] = {}
    for p in sorted(root.rglob("*.json")):
        if p.name.startswith(".") or "failed" in p.relative_to(root).parts:
            continue
        rec = read_record(p)
        if rec is not None:
            found.setdefault((rec["run_id"], rec["config_hash"]), []).append((p, rec))
        else:
            warnings.warn(
                f"{p} is not a valid run record (truncated, corrupt, or with a non-finite accuracy); "
                f"ignored. Running its grid again rebuilds it.",
                stacklevel=2,
            )
    for (run_id, _), copies in found.items():
        own = [c for c in copies if c[0] == root / str(c[1]["dataset"]) / f"{run_id}.json"]
        keep = (own or copies)[0]
        for p, _ in copies:
            if p != keep[0]:
                warnings.warn(
                    f"{p} is a copy of the run record {keep[0]} (same run id and configuration hash); counted once.",
                    stacklevel=2,
                )
        yield keep


def failure_path(results_dir: Path, record_path: Path) -> Path:
    return Path(results_dir) / "failed" / Path(record_path).relative_to(results_dir)
