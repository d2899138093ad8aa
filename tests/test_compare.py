"""`albench compare` on constructed tables: ranks, Friedman, Nemenyi CD and paired differences by hand."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("scikit_posthocs", reason="optional extra 'stats' (pip install albench[stats])")

from albench.cli.main import main  # noqa: E402
from albench.reporting.stats import (
    _p_relation,
    critical_difference,
    paired_differences,
    rank_budget,  # noqa: E402
    summary_vs_reference,
)

from helpers import make_record  # noqa: E402

# mean accuracy per (dataset, method) at one budget; hand ranks below (1 = best, ties averaged)
MEANS = {
    "d1": {"A": 80, "B": 70, "C": 60, "D": 50},
    "d2": {"A": 75, "B": 76, "C": 60, "D": 55},
    "d3": {"A": 90, "B": 80, "C": 80, "D": 70},
    "d4": {"A": 66, "B": 65, "C": 64, "D": 67},
    "d5": {"A": 71, "B": 60, "C": 61, "D": 59},
}
HAND_RANKS = {"d1": [1, 2, 3, 4], "d2": [2, 1, 3, 4], "d3": [1, 2.5, 2.5, 4], "d4": [2, 3, 4, 1], "d5": [1, 3, 2, 4]}


def _frame(seed_noise=(0.0, 0.0, 0.0)):
    rows = []
    for d, m in MEANS.items():
        for col, v in m.items():
            for seed, e in zip((1, 2, 3), seed_noise):
                rows.append({"dataset": d, "budget": 1, "column": col, "seed": seed, "accuracy": v + e})
    return pd.DataFrame(rows)


def test_average_ranks_friedman_and_cd_match_hand_computation():
    rk = rank_budget(_frame(), 1)
    hand = np.array([HAND_RANKS[d] for d in MEANS])
    assert rk.ranks.to_numpy().tolist() == hand.tolist()
    avg = hand.mean(axis=0)  # A 1.4, B 2.3, C 2.9, D 3.4
    assert rk.average.to_dict() == pytest.approx(dict(zip("ABCD", avg)))
    assert list(rk.average.index) == ["A", "B", "C", "D"]
    # Friedman without tie correction: 12N/(k(k+1)) * (sum R_j^2 - k(k+1)^2/4); scipy corrects for the one tie (d3)
    n, k = 5, 4
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)
    ties = 2**3 - 2  # one pair tied in one block
    chi2_tie = chi2 / (1 - ties / (n * (k**3 - k)))
    assert rk.friedman_stat == pytest.approx(chi2_tie)
    # Nemenyi CD, Demsar (2006) Table 5: q_0.05 for k = 4 is 2.569
    assert rk.cd == pytest.approx(2.569 * np.sqrt(k * (k + 1) / (6 * n)), abs=2e-3)
    assert critical_difference(2, 10) == pytest.approx(1.960 * np.sqrt(2 * 3 / 60), abs=2e-3)
    assert rk.nemenyi.shape == (4, 4) and rk.nemenyi.loc["A", "D"] < rk.nemenyi.loc["A", "B"]


def test_paired_differences_ci_test_and_win_tie_loss():
    noise = (-0.5, 0.0, 0.5)
    f = _frame(noise)
    # B gets its own seed noise so that A - B varies across seeds on d1
    f.loc[(f["column"] == "B") & (f["dataset"] == "d1"), "accuracy"] += [0.3, -0.2, 0.4]
    cells = paired_differences(f, "A", resamples=999)
    ab = cells[(cells["other"] == "B")].set_index("dataset")
    d1 = np.array([80 - 0.5 - (70 - 0.5 + 0.3), 80 - (70 - 0.2), 80.5 - (70.5 + 0.4)])
    assert ab.loc["d1", "mean_diff"] == pytest.approx(d1.mean())
    from scipy import stats

    assert ab.loc["d1", "p_ttest"] == pytest.approx(stats.ttest_rel(d1, np.zeros(3)).pvalue)
    assert ab.loc["d1", "ci_low"] <= d1.mean() <= ab.loc["d1", "ci_high"]
    assert d1.min() - 1e-9 <= ab.loc["d1", "ci_low"] and ab.loc["d1", "ci_high"] <= d1.max() + 1e-9
    # constant differences over 3 seeds: d2 is a loss (-1 every seed), d4 A vs D a loss, d3 A vs B a win
    assert ab.loc["d2", "outcome"] == "loss" and ab.loc["d3", "outcome"] == "win"
    s = summary_vs_reference(cells, resamples=999).set_index("other")
    per_cell = ab["mean_diff"].to_numpy()
    assert s.loc["B", "mean_diff"] == pytest.approx(per_cell.mean())
    assert s.loc["B", "p_wilcoxon"] == pytest.approx(stats.wilcoxon(per_cell).pvalue)
    assert (s.loc["B", "wins"], s.loc["B", "ties"], s.loc["B", "losses"]) == (4, 0, 1)
    assert (s.loc["D", "wins"], s.loc["D", "losses"], s.loc["D", "higher_mean"]) == (4, 1, 4)


def test_unknown_reference_names_the_columns(tmp_path):
    with pytest.raises(Exception, match="Reference column 'Z' has no records here; columns with records: A, B, C, D"):
        paired_differences(_frame(), "Z")


@pytest.fixture
def toy_results(tmp_path):
    """Table 1 toy suite: Random < BADGE < Ours_CoOp < Ours on every dataset, 3 seeds."""
    root = tmp_path / "results"
    base = {
        ("random", "coop"): 40.0,
        ("badge", "coop"): 45.0,
        ("dualprompt", "coop"): 47.0,
        ("dualprompt", "dualprompt"): 50.0,
    }
    datasets = {"toy_shapes": 10.0, "toy_textures": 0.0, "toy_shifted": -10.0, "toy_patterns": -15.0, "toy_fine": -5.0}
    for d, shift in datasets.items():
        for (s, a), b in base.items():
            for seed, off in {1: -1.0, 2: 0.0, 3: 1.5}.items():
                make_record(root, d, s, a, seed, [b + r + off * (1 + (s == "badge")) + shift for r in range(1, 7)])
    return root


@pytest.mark.slow
def test_compare_cli_prints_cis_ranks_and_writes_cd_diagrams(toy_results, tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        main, ["compare", "--preset", "table1", "--suite", "toy", "--results-dir", str(toy_results), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    txt = res.output
    assert "| Random | 15 | +10.00 | [+10.00, +10.00] |" in txt  # Ours - Random = 10 on every cell and seed
    assert "15 / 0 / 0" in txt
    # ranks at 2 %: Ours 1, Ours_CoOp 2, BADGE 3, Random 4 on each of the 5 datasets
    assert "### Average rank at 2 % (5 datasets as blocks; 1 = best)" in txt
    assert "| Ours | 1.00 |" in txt and "| Random | 4.00 |" in txt
    assert "Friedman χ² = 15.00, p = 0.002;" in txt  # perfect agreement: N (k - 1) = 5 * 3; chi2(3) tail 0.0018
    for b in (1, 2, 5):
        png = out / f"cd_table1_toy_{b}pct.png"
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = pd.read_csv(out / "compare_table1_toy.csv")
    assert len(csv) == 3 * 5 * 3  # 3 others x 5 datasets x 3 budgets
    res = CliRunner().invoke(
        main,
        [
            "compare",
            "--preset",
            "table1",
            "--suite",
            "toy",
            "--reference",
            "Nope",
            "--results-dir",
            str(toy_results),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert res.exit_code == 2 and "--reference 'Nope' is not a column of table1_toy" in res.output
    assert not (tmp_path / "x").exists()


def test_compare_another_metric(toy_results, tmp_path):
    import json

    from albench.reporting.stats import compare

    for p in toy_results.rglob("*.json"):  # balanced accuracy = accuracy - 5 (Ours - Random stays 10 per cell)
        rec = json.loads(p.read_text())
        for r in rec["rounds"]:
            r["diagnostics"] = {"test": {"balanced_accuracy": r["accuracy"] - 5.0}}
        p.write_text(json.dumps(rec))
    c = compare("table1", "toy", toy_results, metric="balanced_accuracy")
    s = c.summary.set_index("other")
    assert s.loc["Random", "mean_diff"] == pytest.approx(10.0) and "Metric: Balanced accuracy" in c.markdown
    assert set(c.frame["accuracy"]) == {a - 5.0 for a in compare("table1", "toy", toy_results).frame["accuracy"]}
    res = CliRunner().invoke(
        main,
        [
            "compare",
            "--preset",
            "table1",
            "--suite",
            "toy",
            "--metric",
            "fallback_picks",
            "--results-dir",
            str(toy_results),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert res.exit_code == 2 and "--metric 'fallback_picks' cannot be compared" in res.output


def test_p_value_after_its_symbol_never_reads_equals_less_than():
    assert _p_relation(0.0123) == "= 0.012"
    assert _p_relation(0.0004) == "< 0.001"
