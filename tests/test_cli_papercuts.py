"""CLI papercuts: -h, no literal %% in help, case-insensitive names, repeated options add up, seed ranges,
list --options."""

import click
import pytest
from click.testing import CliRunner

from albench.api.errors import AlbenchError
from albench.cli.main import main, parse_seeds
from albench.engine.grid import expand_all


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_dash_h_and_help_texts_without_double_percent():
    r = CliRunner()
    assert r.invoke(main, ["-h"]).exit_code == 0
    for path, _ in _commands(main):
        out = r.invoke(main, [*path, "-h"])
        assert out.exit_code == 0, (path, out.output)
        assert "%%" not in out.output, path
    assert "in % of the pool" in r.invoke(main, ["run", "-h"]).output


@pytest.mark.parametrize(
    "text, seeds", [("1,2,3", [1, 2, 3]), ("1-3", [1, 2, 3]), ("1-3,7", [1, 2, 3, 7]), ("4 - 6", [4, 5, 6]), ("5", [5])]
)
def test_seed_ranges(text, seeds):
    assert parse_seeds(text) == seeds


def test_backwards_seed_range_is_an_error():
    with pytest.raises(AlbenchError, match=r"Seed range '3-1' is empty; write it low-high, e.g. 1-3"):
        parse_seeds("3-1")


def test_names_match_case_insensitively_when_unambiguous():
    assert expand_all(["CoOp", "VPT"], ["coop", "vpt", "maple"], "adapter") == ["coop", "vpt"]
    assert expand_all(["DTD"], ["dtd", "eurosat"], "dataset") == ["dtd"]
    assert expand_all(["ALL"], ["a", "b"], "dataset") == ["a", "b"]
    with pytest.raises(AlbenchError, match="Unknown adapter 'X'"):
        expand_all(["X"], ["a"], "adapter")


def test_repeated_strategy_options_add_up_and_names_ignore_case(tmp_path):
    out = CliRunner().invoke(
        main,
        [
            "run",
            "--strategy",
            "Random",
            "--strategy",
            "entropy",
            "--adapter",
            "ZeroShot",
            "--dataset",
            "DIGITS",
            "--rounds",
            "1",
            "--seeds",
            "1-2",
            "--device",
            "cpu",
            "--no-progress",
            "--results-dir",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "grid: 4 run(s) over 1 dataset(s)" in out.output
    names = sorted(p.name.rsplit("__", 1)[0] for p in (tmp_path / "digits").glob("*.json"))
    assert names == [
        "entropy__zeroshot__seed1",
        "entropy__zeroshot__seed2",
        "random__zeroshot__seed1",
        "random__zeroshot__seed2",
    ]


def test_list_options_prints_types_defaults_and_valid_values():
    out = CliRunner().invoke(main, ["list", "--options", "ProbCover"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [
        "strategy probcover: 2 option(s):",
        "  delta      float  default 0.6           a finite number > 0",
        "  max_edges  int    default 200000000     an integer >= 1",
    ]
    out = CliRunner().invoke(main, ["list", "--options", "cop"])
    assert out.exit_code == 2 and "error: Unknown strategy or adapter 'cop'. Did you mean: coop?" in out.stderr


@pytest.mark.parametrize(
    "flag, value, message",
    [
        (
            "--budget",
            "-1",
            "--budget -1 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
        ),
        (
            "--budget",
            "0",
            "--budget 0 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
        ),
        (
            "--budget",
            "1e9",
            "--budget 1e+09 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
        ),
        ("--results-dir", "", "--results-dir is empty; pass a folder, e.g. --results-dir results."),
    ],
)
def test_budget_and_results_dir_explanations(tmp_path, flag, value, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--adapter", "zeroshot", "--device", "cpu", flag, value]
    out = CliRunner().invoke(main, args if flag == "--results-dir" else [*args, "--results-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and f"error: {message}" in out.stderr.splitlines(), out.output
    assert list(tmp_path.iterdir()) == []  # nothing written, not even into the current directory


# --- threads: the same count in every process, and in the identity when not the default ------------------------


def test_every_workspace_uses_the_run_thread_count(monkeypatch, tmp_path):
    import torch

    from albench.engine.protocol import Workspace

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Workspace(tmp_path, device="cpu", progress=False)
        assert torch.get_num_threads() == 1  # default: one thread, as in every --workers N process
        monkeypatch.setenv("ALBENCH_THREADS", "3")
        Workspace(tmp_path, device="cpu", progress=False)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_thread_count_enters_identity_only_when_not_default(monkeypatch, workspace):
    from albench.engine.protocol import RunSpec, config_hash, run_config

    spec = RunSpec("random", "zeroshot", "digits", seed=1, rounds=1)
    task, bb = workspace.task("digits", None, {}), workspace.backbone(spec.backbone)
    base = run_config(spec, task, bb)
    assert "threads" not in base
    monkeypatch.setenv("ALBENCH_THREADS", "4")
    four = run_config(spec, task, bb)
    assert four["threads"] == 4 and config_hash(four) != config_hash(base)
    monkeypatch.setenv("ALBENCH_THREADS", "zero")
    with pytest.raises(AlbenchError, match=r"ALBENCH_THREADS='zero' \(--threads\) must be an integer in 1..1024"):
        run_config(spec, task, bb)


def test_threads_flag_is_checked_and_scoped_to_the_command(tmp_path):
    import os

    out = CliRunner().invoke(main, ["run", "--threads", "0", "--adapter", "zeroshot", "--results-dir", str(tmp_path)])
    assert out.exit_code == 2 and "error: --threads must be an integer in 1..1024, got 0." in out.stderr
    assert "ALBENCH_THREADS" not in os.environ
