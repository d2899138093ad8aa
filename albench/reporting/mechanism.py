"""The mechanism behind the accuracy: per-round diagnostics as table metrics and a report section.

Every round record carries ``diagnostics`` (``albench.engine.diagnostics``;
schema in docs/records.md). ``METRICS`` names the ones a table can show
instead of accuracy (``albench table --metric NAME``), and
``mechanism_markdown`` renders the report's mechanism section: per dataset,
one line per column (strategy / adapter / label) and round, the
misclassification-detection AUROCs of the selecting model's uncertainty
signals and the precision of the pseudo-labels it offered.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from albench.api.errors import AlbenchError


def _diag(*path: str) -> Callable[[dict], float | None]:
    def get(rnd: dict) -> float | None:
        v = rnd.get("diagnostics")
        for p in path:
            if not isinstance(v, dict):
                return None
            v = v.get(p)
        return None if v is None else float(v)

    return get


METRICS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "accuracy": ("Accuracy (%) on the test split", lambda r: r.get("accuracy")),
    "balanced_accuracy": (
        "Balanced accuracy (%, mean of per-class accuracies) on the test split",
        _diag("test", "balanced_accuracy"),
    ),
    "max_softmax_auroc": (
        "Misclassification-detection AUROC of max-softmax on the unlabelled pool",
        _diag("auroc", "max_softmax"),
    ),
    "entropy_auroc": ("Misclassification-detection AUROC of entropy on the unlabelled pool", _diag("auroc", "entropy")),
    "margin_auroc": (
        "Misclassification-detection AUROC of the margin on the unlabelled pool",
        _diag("auroc", "margin"),
    ),
    "pclean_auroc": (
        "Misclassification-detection AUROC of p_clean (dual-prompt models) on the unlabelled pool",
        _diag("auroc", "p_clean"),
    ),
    "pseudo_label_precision": (
        "Precision of the pseudo-labels offered to the adapter",
        _diag("pseudo_labels", "precision"),
    ),
    "pseudo_label_size": ("Number of pseudo-labels offered to the adapter", _diag("pseudo_labels", "size")),
    "pool_accuracy": ("Accuracy (%) of the selecting model on the unlabelled pool", _diag("pool_accuracy")),
    "fallback_picks": ("Picks from a fallback or random fill", _diag("selection", "fallback_picks")),
}


def check_metric(name: str) -> str:
    if name not in METRICS:
        from albench.api.errors import unknown_name_message

        raise AlbenchError(unknown_name_message("metric", name, sorted(METRICS)))
    return name


def metric_value(rnd: dict, name: str) -> float | None:
    """The value of metric ``name`` in one round record (None when the record lacks it)."""
    v = METRICS[check_metric(name)][1](rnd)
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def metric_title(name: str) -> str:
    return METRICS[check_metric(name)][0]


#: strategies rebuilt without public code or method text: marked † in the section, with this note
RECONSTRUCTED = {"cec": "†"}
RECONSTRUCTED_NOTE = "† CEC is a reconstruction (no code or method text of CEC is public; see strategies/cec.py)."

MECHANISM_COLUMNS = [
    ("max_softmax_auroc", "AUROC max-softmax"),
    ("entropy_auroc", "AUROC entropy"),
    ("margin_auroc", "AUROC margin"),
    ("pclean_auroc", "AUROC p_clean"),
    ("pseudo_label_precision", "pseudo-label precision"),
    ("pool_accuracy", "pool acc. %"),
]


def mechanism_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (dataset, column, round): the mean over seeds of each mechanism metric.

    Records of different configurations are never averaged: a column (label / adapter) with several
    configurations in a dataset shows one line per configuration, suffixed with its config id.
    """
    from albench.reporting.cells import config_id

    rows = []
    for rec in records:
        col = f"{rec.get('label', rec['strategy'])}{RECONSTRUCTED.get(rec['strategy'], '')} / {rec['adapter']}"
        for rnd in rec.get("rounds", []):
            if "diagnostics" not in rnd:
                continue
            rows.append(
                {
                    "dataset": rec["dataset"],
                    "column": col,
                    "config": config_id(rec),
                    "round": rnd["round"],
                    "seed": rec["seed"],
                    **{m: metric_value(rnd, m) for m, _ in MECHANISM_COLUMNS},
                }
            )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    several = df.groupby(["dataset", "column"])["config"].transform("nunique") > 1
    df.loc[several, "column"] = df.loc[several, "column"] + " @" + df.loc[several, "config"]
    agg = df.groupby(["dataset", "column", "round"], sort=True)
    out = agg[[m for m, _ in MECHANISM_COLUMNS]].mean()
    out["seeds"] = agg["seed"].nunique()
    return out.reset_index()


def mechanism_markdown(records: list[dict]) -> str:
    """The report's mechanism section as Markdown tables (one per dataset); empty without diagnostics."""
    df = mechanism_frame(records)
    if df.empty:
        return ""
    out = []
    for ds, g in df.groupby("dataset", sort=True):
        out.append(
            f"Mechanism — {ds}: misclassification-detection AUROC of the selecting model's uncertainty "
            f"signals on the unlabelled pool (0.5 = chance), precision of the pseudo-labels it offered, and its "
            f"accuracy on the pool; mean over seeds; — = not applicable (no dual prompts / no pseudo-labels)."
        )
        out.append("")
        out.append("| column | round | seeds | " + " | ".join(t for _, t in MECHANISM_COLUMNS) + " |")
        out.append("|---|---|---|" + "---|" * len(MECHANISM_COLUMNS))
        for _, r in g.iterrows():
            cells = [
                "—" if pd.isna(r[m]) else (f"{r[m]:.1f}" if m == "pool_accuracy" else f"{r[m]:.3f}")
                for m, _ in MECHANISM_COLUMNS
            ]
            out.append(f"| {r['column']} | {int(r['round'])} | {int(r['seeds'])} | " + " | ".join(cells) + " |")
        if g["column"].str.contains("†", regex=False).any():
            out += ["", RECONSTRUCTED_NOTE]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
