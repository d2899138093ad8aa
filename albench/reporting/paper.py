"""The paper's published numbers (Tables 1-4), transcribed into ``reporting/paper_tables.csv``.

Columns: table, adapter, backbone, dataset (as printed), budget_pct (0 = the
zero-shot column), method (column label as printed), mean, std, note. Empty
mean = the paper prints "—"; the Average rows carry no std.
"""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd


@functools.lru_cache(maxsize=1)
def paper_numbers() -> pd.DataFrame:
    with resources.files("albench.reporting").joinpath("paper_tables.csv").open() as f:
        df = pd.read_csv(f)
    df["method"] = df["method"].astype(str)
    df["dataset"] = df["dataset"].astype(str)
    return df


def paper_cell(table: int, dataset: str, budget: float, method: str) -> tuple[float, float] | None:
    """(mean, std) the paper prints for a cell; None when it prints nothing there.

    ``dataset`` is the printed name ("DTD", "Average"); Zero-shot is looked up at budget 0.
    """
    df = paper_numbers()
    b = 0 if method == "Zero-shot" else budget
    hit = df[(df["table"] == table) & (df["dataset"] == dataset) & (df["method"] == method) & (df["budget_pct"] == b)]
    if hit.empty or pd.isna(hit["mean"].iloc[0]):
        return None
    std = hit["std"].iloc[0]
    return float(hit["mean"].iloc[0]), float("nan") if pd.isna(std) else float(std)
