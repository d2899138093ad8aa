"""The Python API (albench.experiments): the documented example runs as written; bad input fails early."""

import re
from pathlib import Path

import pytest

import albench.experiments as ax
from albench.api.errors import AlbenchError

pytestmark = pytest.mark.slow  # real (tiny) runs of the toy CLIP

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/python-api.md has no python example"
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), str(DOC), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "zero-shot " in out and "after round 2" in out
    assert (tmp_path / "results" / "digits").is_dir()
    from albench.api.plugins import STRATEGIES

    assert "first-unlabeled" not in STRATEGIES.names()  # unregistered at the end of the example


def test_bad_input_fails_before_any_run(tmp_path):
    with pytest.raises(AlbenchError, match="nosuch"):
        ax.run("nosuch", "zeroshot", "digits", rounds=1, results_dir=tmp_path / "r")
    with pytest.raises(AlbenchError, match="Unknown tracker 'x'"):
        ax.run("random", "zeroshot", "digits", rounds=1, results_dir=tmp_path / "r", log_to=["x"])
    assert not (tmp_path / "r").exists()


def test_load_records_levels(tmp_path):
    rec = ax.run("random", "zeroshot", "digits", rounds=2, results_dir=tmp_path / "r", device="cpu")
    runs = ax.load_records(tmp_path / "r", level="runs")
    assert list(runs["run_id"]) == [rec["run_id"]] and runs["final_accuracy"].iloc[0] == rec["rounds"][-1]["accuracy"]
    rounds = ax.load_records(ax.records(tmp_path / "r"))
    assert list(rounds["round"]) == [0, 1, 2]
