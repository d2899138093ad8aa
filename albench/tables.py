"""Read run records into pandas and summarise accuracy as mean ± std over seeds.

The ± is the sample standard deviation over seeds (ddof = 1); a cell with one
seed shows no ±. Records with different configuration hashes (other than the
seed) are never averaged together.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .records import iter_records

STD_NOTE = "± = sample standard deviation over seeds (ddof = 1)"


def config_group(record: dict) -> str:
    """Hash of the configuration without the seed: records sharing it may be averaged."""
    from .protocol import canonical
    import hashlib

    cfg = {k: v for k, v in record["config"].items() if k != "seed"}
    return hashlib.sha256(canonical(cfg).encode()).hexdigest()[:8]


def load_rounds(results_dir: str | Path) -> pd.DataFrame:
    """One row per (run, round), plus a round-0 zero-shot row per run."""
    rows = []
    for path, rec in iter_records(Path(results_dir)):
        base = {"dataset": rec["dataset"], "adapter": rec["adapter"], "strategy": rec["strategy"],
                "label": rec.get("label", rec["strategy"]), "seed": rec["seed"], "backbone": rec["config"]["backbone"],
                "group": config_group(rec), "path": str(path)}
        rows.append({**base, "round": 0, "budget_pct": 0.0, "accuracy": rec["zero_shot_accuracy"]})
        for r in rec["rounds"]:
            rows.append({**base, "round": r["round"], "budget_pct": r["budget_pct"], "accuracy": r["accuracy"],
                         "select_seconds": r["seconds"]["select"], "classes_covered": r.get("classes_covered")})
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=1) and seed count per (dataset, adapter, label, group, round)."""
    keys = ["dataset", "adapter", "label", "group", "round"]
    g = df.groupby(keys, sort=True)
    out = g["accuracy"].agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else np.nan, n="count").reset_index()
    out["budget_pct"] = g["budget_pct"].mean().values
    return out


def format_cell(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def simple_table(results_dir: str | Path) -> str:
    """Markdown: rows = dataset / adapter / round, columns = strategy labels (plus zero-shot)."""
    df = load_rounds(results_dir)
    if df.empty:
        return f"No run records found in {results_dir}."
    s = summarise(df)
    groups_per_label = s.groupby(["dataset", "adapter", "label"])["group"].nunique()
    if (groups_per_label > 1).any():
        import warnings

        clash = groups_per_label[groups_per_label > 1].index.tolist()
        warnings.warn(f"records with different configurations for {clash}; shown apart (column suffix = config hash)",
                      stacklevel=2)
        s["column"] = np.where(s.set_index(["dataset", "adapter", "label"]).index.isin(clash), s["label"] + "@" + s["group"], s["label"])
    else:
        s["column"] = s["label"]
    s["cell"] = [format_cell(m, sd) for m, sd in zip(s["mean"], s["std"])]
    zs = s[s["round"] == 0].groupby(["dataset", "adapter"]).apply(
        lambda x: format_cell(*_pool_zero_shot(df, x.name)), include_groups=False)
    body = s[s["round"] > 0]
    table = body.pivot_table(index=["dataset", "adapter", "round"], columns="column", values="cell", aggfunc="first")
    budget = body.groupby(["dataset", "adapter", "round"])["budget_pct"].mean()
    table.insert(0, "labels %", budget.map(lambda v: f"{v:.1f}"))
    table.insert(1, "zero-shot", [zs.get((d, a), "—") for d, a, _ in table.index])
    lines = ["| dataset | adapter | round | " + " | ".join(table.columns) + " |",
             "|" + "---|" * (3 + len(table.columns))]
    for (d, a, r), row in table.iterrows():
        lines.append(f"| {d} | {a} | {r} | " + " | ".join("—" if pd.isna(v) else str(v) for v in row.values) + " |")
    n_seeds = int(s["n"].max())
    lines.append(f"\nAccuracy (%) on the test split; {STD_NOTE}; up to {n_seeds} seed(s) per cell.")
    return "\n".join(lines)


def _pool_zero_shot(df: pd.DataFrame, key) -> tuple[float, float]:
    d, a = key
    z = df[(df["dataset"] == d) & (df["adapter"] == a) & (df["round"] == 0)].drop_duplicates(["backbone", "seed"])
    vals = z.groupby("seed")["accuracy"].first()
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
