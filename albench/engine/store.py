"""The run store: one place resolves a run's configuration, hash, record path, lock and failure record.

A run is named by its configuration (``protocol.run_config``: everything that affects its numbers)
and that configuration's hash: ``<results>/<dataset>/<strategy>__<adapter>__seed<s>__<hash>.json``.
While a process runs it, it holds ``<results>/.locks/<run id>.lock``; a run that fails leaves
``<results>/failed/<dataset>/<run id>.json`` (error and traceback), and one that fails before its
configuration is known (missing data, unreadable weights) leaves ``...__unresolved.json``. The
executor (``protocol.execute``), the launchers (``launchers.run_one``) and ``albench status``
(``grid.run_state``) all ask this module, so they can never disagree about where a run is. Every
file is written with the one atomic writer (``albench.api.atomic`` through
``records.atomic_write_json``).
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from albench.api.errors import AlbenchError
from albench.engine.records import atomic_write_json, failure_path, read_record, remove_stale_temps

if TYPE_CHECKING:
    from filelock import FileLock

    from albench.clip.backbone import Backbone
    from albench.data.tasks import Dataset
    from albench.engine.protocol import RunSpec, Workspace

LOCK_DIR = ".locks"


@dataclass(frozen=True)
class RunLocation:
    """The files of one run in a results directory."""

    results_dir: Path
    record: Path

    @property
    def run_id(self) -> str:
        return self.record.stem

    @property
    def lock_file(self) -> Path:
        return self.results_dir / LOCK_DIR / f"{self.run_id}.lock"

    @property
    def failure(self) -> Path:
        return failure_path(self.results_dir, self.record)

    def read(self) -> dict | None:
        """The valid record, or None (absent, truncated, not a record)."""
        return read_record(self.record)

    def lock(self) -> FileLock:
        """The run's inter-process lock (not yet acquired); creates the lock folder."""
        from filelock import FileLock

        try:
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AlbenchError(
                f"Cannot write results to {self.results_dir}: {exc.strerror}. "
                f"Check its permissions or choose another {{field}}.",
                field="results_dir",
            ) from exc
        return FileLock(str(self.lock_file))

    def running(self) -> bool:
        """Whether another process holds the run's lock right now (creates nothing when none ever did)."""
        if not self.lock_file.exists():
            return False
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lock_file))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    def remove_stale_temps(self) -> None:
        """Temp files of the record and the failure record left by a killed writer; call holding the lock."""
        remove_stale_temps(self.record)
        remove_stale_temps(self.failure)

    def write(self, record: dict) -> None:
        """The finished run's record, atomically; a failure record of an earlier attempt is removed."""
        atomic_write_json(self.record, record)
        self.failure.unlink(missing_ok=True)

    def write_failure(self, config_hash: str, config: dict, exc: BaseException) -> None:
        """The failure record (error, traceback, time); call inside the ``except`` block. Best effort: a
        results directory that cannot take it must not hide the run's own error."""
        fail = {
            "run_id": self.run_id,
            "config_hash": config_hash,
            "config": config,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "at": datetime.now(timezone.utc).isoformat(),
        }
        try:
            atomic_write_json(self.failure, fail)
        except AlbenchError:
            pass

    def failure_error(self) -> str | None:
        """The error of the failure record, or None when there is none."""
        if not self.failure.exists():
            return None
        try:
            return json.loads(self.failure.read_text()).get("error", "")
        except (OSError, ValueError):
            return "(unreadable failure record)"


def location(results_dir: str | Path, dataset: str, slug: str, config_hash: str) -> RunLocation:
    """Where the run ``slug`` of ``dataset`` with this configuration hash lives (a name that could leave
    ``results_dir`` is refused, whoever built the spec)."""
    from albench.engine.integrity import safe_name_problem

    problem = safe_name_problem("dataset", dataset) or next(
        (safe_name_problem("run", part) for part in slug.split("__") if safe_name_problem("run", part)), None
    )
    if problem:
        raise AlbenchError(problem)
    results_dir = Path(results_dir)
    return RunLocation(results_dir, results_dir / dataset / f"{slug}__{config_hash}.json")


@dataclass(frozen=True)
class ResolvedRun:
    """A run with its data and weights loaded: what it is (configuration, hash) and where it lives."""

    backbone: Backbone
    dataset: Dataset
    config: dict[str, Any]
    config_hash: str
    location: RunLocation


def resolve(spec: RunSpec, results_dir: str | Path, ws: Workspace) -> ResolvedRun:
    """Load the run's backbone and dataset (cached in ``ws``), then name it. Raises when either cannot load."""
    from albench.engine.protocol import config_hash, run_config

    backbone = ws.backbone(spec.backbone)
    dataset = ws.task(spec.dataset, spec.data_root, spec.dataset_options)
    config = run_config(spec, dataset, backbone)
    chash = config_hash(config)
    return ResolvedRun(backbone, dataset, config, chash, location(results_dir, spec.dataset, spec.slug(), chash))


def unresolved_failure(results_dir: str | Path, spec: RunSpec, exc: BaseException) -> Path:
    """Failure record of a run that failed before its configuration hash was known; call inside ``except``."""
    path = Path(results_dir) / "failed" / spec.dataset / f"{spec.slug()}__unresolved.json"
    atomic_write_json(
        path,
        {
            "run_id": f"{spec.slug()}__unresolved",
            "config_hash": None,
            "spec": repr(spec),
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "at": datetime.now(timezone.utc).isoformat(),
        },
    )
    return path
