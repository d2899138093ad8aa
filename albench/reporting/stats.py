"""Is a lead real? Paired differences, win/tie/loss, average ranks, Friedman + Nemenyi.

The statistics follow the practice for comparing methods over several data
sets (Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets",
JMLR 7, 2006) and are computed by scipy and scikit-posthocs, not by hand:

* **Paired differences** (reference − other) per (dataset, budget) over the
  seeds both columns share: mean, a 95 % percentile-bootstrap interval
  (``scipy.stats.bootstrap``, fixed generator, so the same numbers every time)
  and a paired t-test (``scipy.stats.ttest_rel``). Overall, the per-cell mean
  differences are the observations: their mean, bootstrap interval and the
  Wilcoxon signed-rank test (``scipy.stats.wilcoxon``), Demšar's recommended
  paired test over data sets.
* **Win/tie/loss** over datasets × budgets: a win (loss) is a cell whose
  paired t-test over shared seeds has p < alpha with the reference ahead
  (behind); everything else, including cells with fewer than two shared seeds,
  is a tie.
* **Average ranks** per budget with datasets as blocks (rank 1 = highest mean
  accuracy; ties get the average rank, ``scipy.stats.rankdata``), the Friedman
  test (``scipy.stats.friedmanchisquare``), the Nemenyi post-hoc test
  (``scikit_posthocs.posthoc_nemenyi_friedman``), its critical difference
  CD = q_alpha · sqrt(k (k + 1) / (6 N)) with q_alpha from the studentized range
  distribution, and the critical-difference diagram
  (``scikit_posthocs.critical_difference_diagram``). A column without a value
  on some dataset at that budget (the paper's "—" cells, missing runs) is left
  out of that budget's ranking, and the output says so.

scikit-posthocs is an optional extra (``pip install albench[stats]``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from albench.api.errors import AlbenchError

ALPHA = 0.05
RESAMPLES = 9999
#: per-round metrics where higher is better (ranks and wins assume it)
COMPARABLE = (
    "accuracy",
    "balanced_accuracy",
    "max_softmax_auroc",
    "entropy_auroc",
    "margin_auroc",
    "pclean_auroc",
    "pseudo_label_precision",
    "pool_accuracy",
)


def seed_frame(preset, records, budgets=None, seeds=None, configs=(), metric: str = "accuracy") -> pd.DataFrame:
    """Per (dataset, budget, column, seed): the accuracy (or another ``metric`` of
    ``albench.reporting.mechanism.METRICS``; column ``accuracy`` either way) of each cell's chosen configuration.

    Uses the same cells as the preset's table (``albench.reporting.tables.preset_cells``), so a
    comparison never mixes configurations the table does not show.
    """
    from albench.reporting.mechanism import metric_value
    from albench.reporting.tables import _budget_round, cell_of, preset_cells

    budgets = list(budgets or preset.budgets)
    cells = preset_cells(preset, records, seeds, configs)
    rows = []
    for d in preset.datasets:
        for c in preset.columns:
            cell = cell_of(cells, d, c)
            for b in budgets:
                if cell is None or b in c.dash_budgets:
                    continue
                for rec in cell.records:
                    hit = [r for r in rec["rounds"] if r["round"] == _budget_round(rec, b)]
                    v = metric_value(hit[0], metric) if hit else None
                    if v is not None:
                        rows.append(
                            {
                                "dataset": d,
                                "budget": b,
                                "column": c.label,
                                "seed": rec["seed"],
                                "accuracy": v,
                                "config": cell.chosen.id,
                            }
                        )
    return pd.DataFrame(rows, columns=["dataset", "budget", "column", "seed", "accuracy", "config"])


def bootstrap_ci(values, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean (NaN, NaN with fewer than two values)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float("nan"), float("nan")
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's degenerate-data notes for tiny samples
        kw = dict(confidence_level=confidence, n_resamples=resamples, method="percentile")
        try:
            res = stats.bootstrap((v,), np.mean, rng=np.random.default_rng(seed), **kw)
        except TypeError:  # scipy < 1.15 names the generator random_state
            res = stats.bootstrap((v,), np.mean, random_state=np.random.default_rng(seed), **kw)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ttest_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    if a.size < 2:
        return float("nan")
    d = a - b
    if np.all(d == d[0]):  # zero variance: no test (a constant, nonzero lead over 2+ seeds is still shown)
        return 0.0 if d[0] != 0 else 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def paired_differences(
    frame: pd.DataFrame, reference: str, alpha: float = ALPHA, resamples: int = RESAMPLES
) -> pd.DataFrame:
    """Per (other column, dataset, budget): reference − other over shared seeds, with CI, p and outcome.

    ``outcome`` is win / loss (paired t-test p < alpha, by the sign of the mean difference) or tie.
    """
    if reference not in set(frame["column"]):
        known = ", ".join(sorted(set(frame["column"]))) or "none"
        raise AlbenchError(f"Reference column {reference!r} has no records here; columns with records: {known}.")
    piv = frame.pivot_table(index=["dataset", "budget", "seed"], columns="column", values="accuracy")
    rows = []
    others = [c for c in dict.fromkeys(frame["column"]) if c != reference]
    for other in others:
        for (d, b), g in piv.groupby(level=["dataset", "budget"], sort=False):
            if reference not in g or other not in g:
                continue
            pair = g[[reference, other]].dropna()
            if pair.empty:
                continue
            a, o = pair[reference].to_numpy(), pair[other].to_numpy()
            diff = a - o
            lo, hi = bootstrap_ci(diff, resamples=resamples)
            p = _ttest_p(a, o)
            outcome = "tie" if not (p < alpha) else ("win" if diff.mean() > 0 else "loss")
            rows.append(
                {
                    "other": other,
                    "dataset": d,
                    "budget": b,
                    "n_seeds": int(diff.size),
                    "seeds": ",".join(str(s) for s in pair.index.get_level_values("seed")),
                    "mean_diff": float(diff.mean()),
                    "ci_low": lo,
                    "ci_high": hi,
                    "p_ttest": p,
                    "outcome": outcome,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "other",
            "dataset",
            "budget",
            "n_seeds",
            "seeds",
            "mean_diff",
            "ci_low",
            "ci_high",
            "p_ttest",
            "outcome",
        ],
    )


def summary_vs_reference(cells: pd.DataFrame, resamples: int = RESAMPLES) -> pd.DataFrame:
    """Per other column: mean of the per-cell differences, bootstrap CI, Wilcoxon p, win/tie/loss counts."""
    from scipy import stats

    rows = []
    for other, g in cells.groupby("other", sort=False):
        d = g["mean_diff"].to_numpy()
        lo, hi = bootstrap_ci(d, resamples=resamples)
        p = float("nan")
        if d.size >= 2 and np.any(d != 0):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # exact-distribution notes for tiny samples
                p = float(stats.wilcoxon(d).pvalue)
        counts = g["outcome"].value_counts()
        rows.append(
            {
                "other": other,
                "cells": int(d.size),
                "mean_diff": float(d.mean()),
                "ci_low": lo,
                "ci_high": hi,
                "p_wilcoxon": p,
                "wins": int(counts.get("win", 0)),
                "ties": int(counts.get("tie", 0)),
                "losses": int(counts.get("loss", 0)),
                "higher_mean": int((d > 0).sum()),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "other",
            "cells",
            "mean_diff",
            "ci_low",
            "ci_high",
            "p_wilcoxon",
            "wins",
            "ties",
            "losses",
            "higher_mean",
        ],
    )


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference for k methods over n blocks: q_alpha · sqrt(k (k+1) / (6 n))."""
    from scipy import stats

    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass
class Ranking:
    """Average ranks at one budget, datasets as blocks."""

    budget: float
    means: pd.DataFrame  # rows = datasets (blocks), columns = methods: mean accuracy over seeds
    ranks: pd.DataFrame  # same shape: rank 1 = best
    left_out: list[str] = field(default_factory=list)  # columns without a value on every dataset
    friedman_stat: float = float("nan")
    friedman_p: float = float("nan")
    nemenyi: pd.DataFrame | None = None  # pairwise p-values
    cd: float = float("nan")

    @property
    def average(self) -> pd.Series:
        return self.ranks.mean().sort_values()


def rank_budget(frame: pd.DataFrame, budget: float, alpha: float = ALPHA) -> Ranking | None:
    """Average ranks, Friedman and Nemenyi at one budget; None when fewer than 2 methods or 2 datasets remain."""
    from scipy import stats

    sub = frame[frame["budget"] == budget]
    if sub.empty:
        return None
    means = sub.groupby(["dataset", "column"], sort=False)["accuracy"].mean().unstack("column")
    order = list(dict.fromkeys(sub["column"]))
    means = means[[c for c in order if c in means.columns]]
    left_out = [c for c in means.columns if means[c].isna().any()]
    means = means.drop(columns=left_out)
    if means.shape[1] < 2 or means.shape[0] < 2:
        return None
    ranks = means.apply(lambda r: pd.Series(stats.rankdata(-r.to_numpy()), index=r.index), axis=1)
    out = Ranking(budget, means, ranks, left_out)
    k, n = means.shape[1], means.shape[0]
    if k >= 3:
        res = stats.friedmanchisquare(*[means[c].to_numpy() for c in means.columns])
        out.friedman_stat, out.friedman_p = float(res.statistic), float(res.pvalue)
        out.cd = critical_difference(k, n, alpha)
        try:
            ph = _posthocs()
        except AlbenchError:  # the report goes on without the Nemenyi test; `albench compare` requires it
            ph = None
        if ph is not None:
            out.nemenyi = ph.posthoc_nemenyi_friedman(means.to_numpy())
            out.nemenyi.index = out.nemenyi.columns = list(means.columns)
    return out


def _posthocs():
    try:
        import scikit_posthocs
    except ImportError:
        raise AlbenchError(
            "The Nemenyi test and critical-difference diagram need scikit-posthocs: "
            "pip install 'albench[stats]' (or pip install scikit-posthocs)."
        ) from None
    return scikit_posthocs


def cd_diagram(ranking: Ranking, path, colors: dict | None = None, alpha: float = ALPHA):
    """Write the critical-difference diagram of one budget's ranking (PNG, atomically); None without Nemenyi."""
    if ranking.nemenyi is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from albench.api.atomic import atomic_write

    k = ranking.means.shape[1]
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.28 * k), dpi=110)
    _posthocs().critical_difference_diagram(
        ranking.average, ranking.nemenyi, ax=ax, alpha=alpha, color_palette=colors or {}
    )
    ax.set_title(
        f"Average rank at {ranking.budget:g} % over {ranking.means.shape[0]} datasets "
        f"(Nemenyi CD = {ranking.cd:.2f}; bars join methods not significantly different at "
        f"α = {alpha:g})",
        fontsize=8,
    )
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def _p_relation(p: float) -> str:
    """A p-value after its symbol: '= 0.012' or '< 0.001' (never '= < 0.001')."""
    text = _p(p)
    return text if text.startswith("<") else f"= {text}"


def _p(p: float) -> str:
    return "—" if np.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _ci(lo: float, hi: float) -> str:
    return "—" if np.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"


def compare_markdown(
    reference: str,
    summary: pd.DataFrame,
    cells: pd.DataFrame,
    rankings: list[Ranking],
    alpha: float = ALPHA,
    title: str = "",
) -> str:
    """The comparison as Markdown: summary vs the reference, ranks per budget, per-cell differences."""
    out = [
        f"## {reference} against every other column{' — ' + title if title else ''}",
        "",
        f"Δ = {reference} − other, in accuracy points. Per cell (dataset × budget): mean over the seeds both "
        f"share, paired t-test; overall: the per-cell means as observations, 95 % percentile-bootstrap interval "
        f"({RESAMPLES} resamples, fixed generator) and Wilcoxon signed-rank test. W/T/L: cells where the paired "
        f"t-test has p < {alpha:g} with {reference} ahead / not significant / behind.",
        "",
        "| other | cells | mean Δ | 95 % CI | Wilcoxon p | W / T / L | higher mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        out.append(
            f"| {r['other']} | {r['cells']} | {r['mean_diff']:+.2f} | {_ci(r['ci_low'], r['ci_high'])} | "
            f"{_p(r['p_wilcoxon'])} | {r['wins']} / {r['ties']} / {r['losses']} | "
            f"{r['higher_mean']}/{r['cells']} |"
        )
    for rk in rankings:
        out += [
            "",
            f"### Average rank at {rk.budget:g} % ({rk.means.shape[0]} datasets as blocks; 1 = best)",
            "",
            "| method | average rank |",
            "|---|---|",
        ]
        out += [f"| {m} | {v:.2f} |" for m, v in rk.average.items()]
        if not np.isnan(rk.friedman_p) and rk.nemenyi is None:
            out.append(
                f"\nFriedman χ² = {rk.friedman_stat:.2f}, p {_p_relation(rk.friedman_p)}; Nemenyi CD = {rk.cd:.2f} "
                f"(α = {alpha:g}); install scikit-posthocs (extra 'stats') for the pairwise test and diagram."
            )
        elif not np.isnan(rk.friedman_p):
            out.append(
                f"\nFriedman χ² = {rk.friedman_stat:.2f}, p {_p_relation(rk.friedman_p)}; Nemenyi critical "
                f"difference CD = {rk.cd:.2f} (α = {alpha:g}): methods whose average ranks differ by less "
                f"are not significantly different."
            )
        else:
            out.append("\nFriedman test needs at least three methods with a value on every dataset.")
        if rk.left_out:
            out.append(f"Left out at {rk.budget:g} % (no value on every dataset): {', '.join(rk.left_out)}.")
    out += [
        "",
        "### Per cell",
        "",
        "| other | dataset | budget | seeds | mean Δ | 95 % CI | t-test p | outcome |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in cells.iterrows():
        out.append(
            f"| {r['other']} | {r['dataset']} | {r['budget']:g}% | {r['seeds']} | {r['mean_diff']:+.2f} | "
            f"{_ci(r['ci_low'], r['ci_high'])} | {_p(r['p_ttest'])} | {r['outcome']} |"
        )
    return "\n".join(out)


@dataclass
class Comparison:
    """Everything ``albench compare`` prints and writes."""

    preset: Any  # albench.engine.grid.Preset (not imported at module level: reporting reads it lazily)
    reference: str
    frame: pd.DataFrame  # per (dataset, budget, column, seed)
    cells: pd.DataFrame  # paired_differences
    summary: pd.DataFrame  # summary_vs_reference
    rankings: list[Ranking]
    notes: list[str]
    markdown: str


def compare(
    preset_name: str,
    suite: str,
    records,
    reference: str = "Ours",
    budgets=None,
    seeds=None,
    configs=(),
    alpha: float = ALPHA,
    metric: str = "accuracy",
) -> Comparison:
    """Compare ``reference`` with every other column of a preset over the records (one configuration per cell).

    ``metric``: accuracy by default, or any per-round metric of ``albench.reporting.mechanism.METRICS``
    (higher = better is assumed for ranks; for AUROCs and balanced accuracy it is).
    """
    from albench.engine.grid import load_preset
    from albench.reporting.tables import _records, display_title, preset_frame

    if metric not in COMPARABLE:
        raise AlbenchError(
            f"--metric {metric!r} cannot be compared (higher must mean better); valid: {', '.join(COMPARABLE)}."
        )

    preset = load_preset(preset_name, suite)
    records = _records(records)
    budgets = list(budgets or preset.budgets)
    labels = [c.label for c in preset.columns]
    if reference not in labels:
        raise AlbenchError(
            f"--reference {reference!r} is not a column of {preset.slug}; its columns: {', '.join(labels)}."
        )
    frame = seed_frame(preset, records, budgets, seeds, configs, metric)
    if frame.empty:
        raise AlbenchError(
            f"No records of {preset.slug} (datasets {', '.join(preset.datasets)}; backbone "
            f"{preset.backbone.arch}) for these seeds; run `albench run --preset {preset.name} "
            f"--suite {suite}` first or pass --results-dir."
        )
    _, notes = preset_frame(preset, records, budgets, seeds, configs)
    cells = paired_differences(frame, reference, alpha)
    summary = summary_vs_reference(cells)
    rankings = [r for b in budgets if (r := rank_budget(frame, b, alpha)) is not None]
    from albench.reporting.tables import RULE_TEXT

    md = compare_markdown(
        reference,
        summary,
        cells,
        rankings,
        alpha,
        display_title(preset) + ("" if preset.suite == "paper" else f" — {preset.suite} suite"),
    )
    if metric != "accuracy":
        from albench.reporting.mechanism import metric_title

        head, rest = md.split("\n", 1)
        md = f"{head}\n\nMetric: {metric_title(metric)} (`{metric}`); Δ and ranks below are in its units.\n{rest}"
    if notes:
        md += f"\n\n{RULE_TEXT[0].upper() + RULE_TEXT[1:]}; the same as in the table:\n" + "\n".join(
            f"- {n}" for n in notes
        )
    return Comparison(preset, reference, frame, cells, summary, rankings, notes, md)


def write_compare(cmp: Comparison, out_dir, colors: dict | None = None) -> list:
    """Write compare_<slug>.md, compare_<slug>.csv (per cell) and cd_<slug>_<budget>pct.png into ``out_dir``."""
    from pathlib import Path

    from albench.api.atomic import atomic_write
    from albench.reporting.tables import _out_dir

    out = _out_dir(out_dir)
    slug = cmp.preset.slug
    paths = []
    for rk in cmp.rankings:
        p = cd_diagram(rk, out / f"cd_{slug}_{rk.budget:g}pct.png", colors)
        if p is not None:
            paths.append(Path(p))
    paths.append(atomic_write(out / f"compare_{slug}.md", cmp.markdown + "\n"))
    paths.append(atomic_write(out / f"compare_{slug}.csv", cmp.cells.to_csv(index=False, float_format="%.4f")))
    return paths
