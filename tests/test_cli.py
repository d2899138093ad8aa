import pytest
from click.testing import CliRunner

from albench.cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_unknown_strategy_exits_nonzero_with_suggestion(tmp_path):
    res = CliRunner().invoke(main, ["run", "--strategy", "randm", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "Unknown strategy 'randm'. Did you mean: random?" in res.output
    assert "Traceback" not in res.output
    assert not any(tmp_path.iterdir())


def test_bad_seed_and_empty_list(tmp_path):
    res = CliRunner().invoke(main, ["run", "--seeds", "1,x", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "Seed 'x' is not an integer" in res.output
    res = CliRunner().invoke(main, ["run", "--strategy", "random,", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "Empty item in list" in res.output


@pytest.mark.slow
def test_run_then_table(tmp_path):
    res = run(
        "run",
        "--strategy",
        "random",
        "--adapter",
        "coop",
        "--dataset",
        "digits",
        "--seeds",
        "1,2",
        "--rounds",
        "2",
        "--adapter-opt",
        "epochs=3",
        "--results-dir",
        str(tmp_path / "r"),
    )
    assert res.exit_code == 0, res.output
    assert "2 run(s) done" in res.output and "record:" in res.output and "(zero-shot)" in res.output
    res = run("table", "--results-dir", str(tmp_path / "r"))
    assert res.exit_code == 0
    assert "±" in res.output and "sample standard deviation over seeds" in res.output
    assert "| digits | coop | 2 |" in res.output


def test_list_is_plain_metadata():
    res = run("list", "--verbose")
    assert "random  albench_strategies.random:RandomStrategy  [albench" in res.output
    assert "toy_textures" in res.output
