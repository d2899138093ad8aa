"""Run records as flat tables: one row per (run, round) or per run, for pandas, CSV and Parquet.

The frame is the raw material (every record, every configuration); the cell
rule of ``albench.reporting.cells`` applies to tables and figures, not here —
the ``config_id`` column says which records may be averaged together.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from albench.api.errors import AlbenchError
from albench.reporting.cells import config_id

LEVELS = ("rounds", "runs")
FORMATS = ("csv", "parquet")


def _run_columns(rec: dict) -> dict:
    cfg = rec["config"]
    prov = rec.get("provenance") or {}
    return {
        "run_id": rec["run_id"],
        "config_id": config_id(rec),
        "config_hash": rec["config_hash"],
        "dataset": rec["dataset"],
        "strategy": rec["strategy"],
        "adapter": rec["adapter"],
        "label": rec.get("label") or rec["strategy"],
        "seed": rec["seed"],
        "backbone": rec.get("backbone", {}).get("arch"),
        "strategy_options": json.dumps(cfg.get("strategy_options", {}), sort_keys=True, default=str),
        "adapter_options": json.dumps(cfg.get("adapter_options", {}), sort_keys=True, default=str),
        "pool_size": rec.get("pool_size"),
        "num_classes": rec.get("num_classes"),
        "zero_shot_accuracy": rec.get("zero_shot_accuracy"),
        "device": rec.get("device"),
        "hostname": prov.get("hostname"),
        "finished_at": rec.get("timing", {}).get("finished_at"),
    }


def _balanced(r: dict) -> float | None:
    return ((r.get("diagnostics") or {}).get("test") or {}).get("balanced_accuracy")


def _encoder_images(r: dict) -> int:
    enc = r.get("encoder") or {}
    return int(sum(v for v in enc.values() if isinstance(v, (int, float))))


def records_frame(records, level: str = "rounds") -> pd.DataFrame:
    """A DataFrame of run records.

    ``level="rounds"``: one row per (run, round) with labeled count, budget %, accuracy, balanced
    accuracy (when the record has diagnostics), classes covered, seconds and encoder images per
    phase; round 0 is zero-shot CLIP. ``level="runs"``: one row per run with its final accuracy,
    area under the budget curve, total seconds and encoder images.
    """
    from albench.reporting.tables import _records, aubc

    if level not in LEVELS:
        raise AlbenchError(f"Unknown level {level!r}; valid: {', '.join(LEVELS)}.")
    rows = []
    for rec in _records(records):
        base = _run_columns(rec)
        if level == "runs":
            rr = rec["rounds"]
            rows.append(
                {
                    **base,
                    "rounds": len(rr),
                    "final_labeled": rr[-1]["labeled"] if rr else 0,
                    "final_accuracy": rr[-1]["accuracy"] if rr else np.nan,
                    "final_balanced_accuracy": _balanced(rr[-1]) if rr else None,
                    "aubc": aubc(rr) if rr else np.nan,
                    "total_seconds": rec.get("timing", {}).get("total_seconds"),
                    "encoder_images": (rec.get("encoder_passes") or {}).get("image_encoder_images"),
                }
            )
            continue
        rows.append(
            {
                **base,
                "round": 0,
                "labeled": 0,
                "budget_pct": 0.0,
                "accuracy": rec.get("zero_shot_accuracy"),
                "balanced_accuracy": None,
                "classes_covered": 0,
                "select_seconds": 0.0,
                "train_seconds": 0.0,
                "evaluate_seconds": 0.0,
                "encoder_images": 0,
            }
        )
        for r in rec["rounds"]:
            sec = r.get("seconds") or {}
            rows.append(
                {
                    **base,
                    "round": r["round"],
                    "labeled": r["labeled"],
                    "budget_pct": r["budget_pct"],
                    "accuracy": r["accuracy"],
                    "balanced_accuracy": _balanced(r),
                    "classes_covered": r.get("classes_covered"),
                    "select_seconds": sec.get("select"),
                    "train_seconds": sec.get("train"),
                    "evaluate_seconds": sec.get("evaluate"),
                    "encoder_images": _encoder_images(r),
                }
            )
    return pd.DataFrame(rows)


def export(records, path: str | Path, fmt: str | None = None, level: str = "rounds") -> tuple[Path, int]:
    """Write ``records_frame(records, level)`` to ``path`` as CSV or Parquet (atomically); return path and rows.

    ``fmt`` defaults to the file's suffix. Parquet needs pyarrow (extra ``export``).
    """
    from albench.api.atomic import atomic_write

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise AlbenchError(
            f"Unknown export format {fmt!r}; valid: {', '.join(FORMATS)} (or a .csv/.parquet file name)."
        )
    df = records_frame(records, level)
    if df.empty:
        raise AlbenchError("No run records to export; run `albench run` first or pass --results-dir.")
    if fmt == "csv":
        atomic_write(path, df.to_csv(index=False))
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise AlbenchError(
                "--format parquet needs pyarrow: pip install 'albench[export]' (or pip install "
                "pyarrow); --format csv needs nothing extra."
            ) from None
        atomic_write(path, lambda f: df.to_parquet(f, index=False))
    return path, len(df)
