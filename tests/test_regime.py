"""`albench toy regime`: the checks and the probe it reports."""

import numpy as np
from click.testing import CliRunner

from albench.engine.regime import TaskRegime, holds, linear_probe, to_markdown


def test_linear_probe_separates_what_is_separable_and_not_what_is_not():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    centres = rng.normal(size=(4, 16)) * 3
    x = centres[y] + rng.normal(size=(200, 16)) * 0.3
    acc, c = linear_probe(x[::2], y[::2], x[1::2], y[1::2])
    assert acc == 100.0 and c > 0
    noise, _ = linear_probe(rng.normal(size=(100, 16)), y[::2], rng.normal(size=(100, 16)), y[1::2])
    assert noise < 50.0  # chance is 25 %


def test_checks_use_the_documented_thresholds():
    ok = TaskRegime("t", 10, zero_shot=50.0, linear_probe=65.0, probe_c=1.0, coop=[50.0, 50.0, 50.0])
    assert ok.a and ok.b and ok.c
    assert not TaskRegime("t", 10, 24.9, 90.0, 1.0).a and not TaskRegime("t", 10, 85.1, 100.0, 1.0).a
    assert not TaskRegime("t", 10, 50.0, 64.9, 1.0).b
    low = TaskRegime("t", 10, 50.0, 80.0, 1.0, coop=[49.0, 50.0, 50.5])
    assert not low.c  # mean 49.83 < 50
    assert holds([ok, ok, low]) and not holds([ok, low, low])  # (c) may fail on one task only
    assert not holds([ok, TaskRegime("t", 10, 20.0, 80.0, 1.0, coop=[30.0])])
    md = to_markdown([ok, low])
    assert "| t | 10 | 50.0 | 80.0 (1) | 49.8 (49.0, 50.0, 50.5) | yes | yes | NO |" in md


def test_unknown_task_fails_before_anything_runs(tmp_path):
    from albench.cli.main import main

    res = CliRunner().invoke(main, ["toy", "regime", "--tasks", "digits,nope", "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "nope" in res.output and "toy_shapes" in res.output
    assert not (tmp_path / "r").exists()
