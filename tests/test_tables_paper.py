"""Paper-layout tables from synthetic records with known numbers."""

import numpy as np
import pytest
from click.testing import CliRunner

from albench.cli.main import main
from albench.reporting.paper import paper_cell
from albench.reporting.tables import aubc, preset_tables, write_preset_tables

from helpers import BASE, DATASET_SHIFT, SEED_OFF, make_record


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for d, shift in DATASET_SHIFT.items():
        for (s, a), base in BASE.items():
            for seed, off in SEED_OFF.items():
                make_record(root, d, s, a, seed, [base + r + off + shift for r in range(1, 7)])
    return root


def row(md: str, title: str, budget: str) -> list[str]:
    """Cells of the Markdown row for (dataset title, budget); rows after the first omit the title."""
    lines = md.splitlines()
    cur = None
    for ln in lines:
        if not ln.startswith("| ") or ln.startswith("| Dataset"):
            continue
        cells = [c.strip() for c in ln.strip("|").split("|")]
        cur = cells[0] or cur
        if cur == title and cells[1] == budget:
            return cells[2:]
    raise AssertionError(f"no row {title} {budget}")


def test_table1_toy_layout_mean_std_bold_deltas_dashes(results, tmp_path):
    t = preset_tables("table1", "toy", results)
    md = t["md"]
    assert t["columns"] == [
        "Zero-shot",
        "Random",
        "Entropy",
        "CoreSet",
        "BADGE",
        "ALFA-Mix",
        "GCNAL",
        "CEC†",
        "Ours_CoOp",
        "Ours",
    ]
    assert "CEC†: a reconstruction (no code or method text of CEC is public" in t["caption"]  # CEC is rebuilt
    cells = dict(zip(t["columns"], row(md, "toy_textures (DTD)", "1%")))
    # seeds 1,2,3 -> base+1-1, base+1, base+1+1: mean base+1, sample std 1.0
    assert cells["Random"] == "41.0 ± 1.0"
    assert cells["CoreSet"] == "—" and cells["ALFA-Mix"] == "—"  # paper prints "—" at 1 %
    assert cells["Entropy"] == "n/a"  # no records
    assert cells["Zero-shot"] == "30.0"
    strongest = 46.0  # BADGE
    assert cells["Ours"] == f"**51.0 ± 1.0** (+{51.0 - strongest:.1f})"
    assert cells["Ours_CoOp"] == f"48.0 ± 1.0 (+{48.0 - strongest:.1f})"
    cells5 = dict(zip(t["columns"], row(md, "toy_textures (DTD)", "5%")))
    assert cells5["CoreSet"] == "46.0 ± 1.0"
    # Average row: mean over the five datasets of the cell means, no std; deltas there too
    avg = dict(zip(t["columns"], row(md, "Average", "2%")))
    assert avg["Random"] == f"{42.0 + np.mean(list(DATASET_SHIFT.values())):.1f}"
    assert avg["Ours"] == f"**{52.0 + np.mean(list(DATASET_SHIFT.values())):.1f}** (+5.0)"
    assert avg["Entropy"] == "n/a"
    # caption states the std convention
    assert "sample standard deviation (ddof = 1) over 3 seeds (seeds 1, 2, 3)" in md
    # and which backbone the toy runs used, next to the paper's
    assert "Table 1: Active learning with the CoOp adapter (toy-clip; paper: ViT-B/16)" in md


def test_outputs_markdown_latex_csv(results, tmp_path):
    paths, md = write_preset_tables("table1", "toy", results, tmp_path / "reports")
    names = {p.name for p in paths}
    assert {
        "table1_toy.md",
        "table1_toy.tex",
        "table1_toy.csv",
        "table1_toy_extras.md",
        "table1_toy_extras.csv",
    } <= names
    tex = (tmp_path / "reports" / "table1_toy.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\textbf{51.0 $\pm$ 1.0}" in tex and r"Ours\_CoOp" in tex and "---" in tex
    import pandas as pd

    csv = pd.read_csv(tmp_path / "reports" / "table1_toy.csv")
    r = csv[(csv.dataset == "toy_textures") & (csv.budget == 1) & (csv.column == "Random")].iloc[0]
    assert r["mean"] == pytest.approx(41.0) and r["std"] == pytest.approx(1.0) and r["n"] == 3


def test_compare_paper_on_the_paper_suite_and_refused_on_toy(results, tmp_path):
    real = tmp_path / "real"
    for (s, a), base in BASE.items():
        for seed, off in SEED_OFF.items():
            make_record(real, "dtd", s, a, seed, [base + r + off for r in range(1, 7)], arch="ViT-B-16")
    paths, md = write_preset_tables("table1", "paper", real, tmp_path / "rep", compare="paper")
    assert {"table1_vs_paper.md", "table1_vs_paper.tex"} <= {p.name for p in paths}
    import pandas as pd

    csv = pd.read_csv(tmp_path / "rep" / "table1.csv")
    r = csv[(csv.dataset == "dtd") & (csv.budget == 1) & (csv.column == "Random")].iloc[0]
    # the paper prints 38.4 for Random on DTD at 1 %
    assert r["paper_mean"] == pytest.approx(38.4) and r["diff"] == pytest.approx(41.0 - 38.4)
    assert "41.0 ± 1.0 / paper 38.4 (Δ +2.6)" in md
    res = CliRunner().invoke(
        main,
        [
            "table",
            "--preset",
            "table1",
            "--suite",
            "toy",
            "--compare",
            "paper",
            "--results-dir",
            str(results),
            "--out",
            str(tmp_path / "toyrep"),
        ],
    )
    assert res.exit_code == 2 and "--compare paper needs --suite paper" in res.output
    assert not (tmp_path / "toyrep").exists()


def test_never_averages_across_config_hashes(results):
    # a 4th run of Random with other adapter options: a different configuration, not averaged in
    make_record(results, "toy_textures", "random", "coop", 1, [99.0] * 6, epochs=5)
    t = preset_tables("table1", "toy", results)
    cells = dict(zip(t["columns"], row(t["md"], "toy_textures (DTD)", "1%")))
    assert cells["Random"] == "41.0 ± 1.0"  # the 3-seed configuration, untouched by 99.0
    (note,) = [w for w in t["warnings"] if "2 configurations" in w]
    # the other configuration is named by what differs, below the table
    assert note.startswith("toy_textures Random: 2 configurations; showing config ")
    assert (
        "(3 seeds (seeds 1, 2, 3); chosen by most seeds, then newest); left out: adapter_options.epochs: 20 → 5 "
        "(1 seed (seed 1); config " in note
    )
    assert note in t["md"] and "the others are listed below the table" in t["caption"]


def test_extras_aubc_coverage_selection_time(results):
    assert aubc(
        [
            {"budget_pct": 1.0, "accuracy": 10.0},
            {"budget_pct": 2.0, "accuracy": 20.0},
            {"budget_pct": 3.0, "accuracy": 20.0},
        ]
    ) == pytest.approx(17.5)
    t = preset_tables("table1", "toy", results, budgets=[1, 2])
    ex = t["extras_md"]
    assert "Area under the budget curve" in ex and "Class coverage" in ex and "Selection time" in ex
    assert "4.0/8" in ex  # round 1: 3 + 1 classes of 8


def test_paper_numbers_packaged():
    assert paper_cell(1, "DTD", 1, "Random") == (38.4, 0.2)
    assert paper_cell(1, "DTD", 1, "CoreSet") is None
    assert paper_cell(1, "DTD", 5, "Zero-shot")[0] == pytest.approx(44.3)
    assert paper_cell(2, "Average", 1, "Random")[0] == pytest.approx(52.9)


def test_table_cli_preset_and_unknown_preset(results, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "table",
            "--preset",
            "table2",
            "--suite",
            "toy",
            "--results-dir",
            str(results),
            "--out",
            str(tmp_path / "rep"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Ours_VPT" in res.output and (tmp_path / "rep" / "table2_toy.tex").exists()
    res = CliRunner().invoke(main, ["table", "--preset", "tabel1", "--results-dir", str(results)])
    assert res.exit_code == 2 and "Unknown preset 'tabel1'. Did you mean: table1" in res.output
    res = CliRunner().invoke(main, ["table", "--preset", "table1", "--suite", "tiny", "--results-dir", str(results)])
    assert res.exit_code == 2 and "Unknown suite 'tiny'" in res.output
