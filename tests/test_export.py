"""Provenance in records, `albench export` (CSV, Parquet) and `albench diff` on real (tiny) runs."""

import json
import socket

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from albench.cli.main import main

pytestmark = pytest.mark.slow  # real (tiny) runs of the toy CLIP

RUN = ["run", "--strategy", "random", "--adapter", "zeroshot", "--dataset", "digits", "--seeds", "1", "--no-progress"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """random x zeroshot on digits, seed 1: one run of 2 rounds and one of 1 round (two configurations)."""
    res = tmp_path_factory.mktemp("export") / "r"
    for rounds in ("2", "1"):
        out = CliRunner().invoke(main, [*RUN, "--rounds", rounds, "--results-dir", str(res)])
        assert out.exit_code == 0, out.output
    recs = {}
    for p in sorted(res.rglob("*.json")):
        rec = json.loads(p.read_text())
        recs[len(rec["rounds"])] = (p, rec)
    assert set(recs) == {1, 2}
    return res, recs


def test_records_carry_provenance(two_runs):
    _, recs = two_runs
    prov = recs[2][1]["provenance"]
    assert prov["hostname"] == socket.gethostname() and prov["cpu"]
    from importlib.metadata import version

    assert prov["libraries"]["torch"] == version("torch") and torch.__version__.startswith(version("torch"))
    import scipy
    import sklearn

    assert prov["libraries"]["scipy"] == scipy.__version__ and prov["libraries"]["scikit-learn"] == sklearn.__version__
    assert prov["libraries"]["open_clip_torch"]
    assert prov["threads"]["torch_intra_op"] == torch.get_num_threads() and prov["threads"]["cpu_count"] >= 1
    assert prov["peak_memory"]["max_rss_mib"] > 50  # torch alone needs more
    assert isinstance(prov["command"], list) and prov["command"]
    # provenance never enters the configuration (same config hash whatever the machine)
    assert "provenance" not in recs[2][1]["config"]


def test_export_csv_and_parquet(two_runs, tmp_path):
    res, recs = two_runs
    r = CliRunner().invoke(main, ["export", "--results-dir", str(res), "--out", str(tmp_path / "all.csv")])
    assert r.exit_code == 0 and "(5 rows, one per (run, round))" in r.output, r.output
    df = pd.read_csv(tmp_path / "all.csv")
    assert len(df) == (2 + 1) + (1 + 1)  # rounds plus a zero-shot row per run
    rec = recs[2][1]
    rows = df[df["run_id"] == rec["run_id"]].set_index("round")
    assert rows.loc[0, "accuracy"] == pytest.approx(rec["zero_shot_accuracy"])
    assert rows.loc[2, "accuracy"] == pytest.approx(rec["rounds"][1]["accuracy"])
    assert rows.loc[2, "balanced_accuracy"] == pytest.approx(
        rec["rounds"][1]["diagnostics"]["test"]["balanced_accuracy"]
    )
    assert rows.loc[2, "hostname"] == socket.gethostname()
    assert df["config_id"].nunique() == 2
    pytest.importorskip("pyarrow", reason="optional extra 'export' (pip install albench[export])")
    r = CliRunner().invoke(
        main,
        [
            "export",
            "--results-dir",
            str(res),
            "--format",
            "parquet",
            "--level",
            "runs",
            "--out",
            str(tmp_path / "runs.parquet"),
        ],
    )
    assert r.exit_code == 0, r.output
    runs = pd.read_parquet(tmp_path / "runs.parquet").set_index("rounds")
    assert runs.loc[2, "final_accuracy"] == pytest.approx(rec["rounds"][-1]["accuracy"])
    assert runs.loc[1, "run_id"] == recs[1][1]["run_id"]


def test_export_refuses_unknown_format_and_empty_dir(tmp_path):
    r = CliRunner().invoke(main, ["export", "--results-dir", str(tmp_path), "--out", str(tmp_path / "x.xlsx")])
    assert r.exit_code == 2 and "Unknown export format 'xlsx'; valid: csv, parquet" in r.output
    r = CliRunner().invoke(main, ["export", "--results-dir", str(tmp_path / "none"), "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "No run records to export" in r.output and not (tmp_path / "x.csv").exists()


def test_diff_prints_the_options_that_differ(two_runs):
    res, recs = two_runs
    a, b = recs[2][1]["run_id"], recs[1][1]["config_hash"][:8]
    r = CliRunner().invoke(main, ["diff", a, b, "--results-dir", str(res)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[2] == "options that differ (1), A → B:" and lines[3] == "  protocol.rounds: 2 → 1"
    r = CliRunner().invoke(main, ["diff", str(recs[2][0]), a, "--results-dir", str(res)])
    assert "options: identical (same configuration and seed)" in r.output
    r = CliRunner().invoke(main, ["diff", "nosuchrun", a, "--results-dir", str(res)])
    assert r.exit_code == 2 and "No run record 'nosuchrun'" in r.output
