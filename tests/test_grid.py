"""Grid harness: presets, expansion, failures, locking, kill-and-resume, worker processes, submitit."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from albench.cli.main import main
from albench.api.errors import AlbenchError, UnknownNameError
from albench.engine.grid import build_grid, grid_status, load_preset, preset_names
from albench.api.plugins import STRATEGIES
from albench.engine.records import read_record
from albench.api.strategy import Strategy

TINY = [
    "--dataset",
    "digits",
    "--rounds",
    "2",
    "--adapter-opt",
    "epochs=2",
    "--adapter-opt",
    "min_steps=0",
    "--pretrained",
    "random",
    "--no-progress",
]


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def records(root: Path) -> dict[str, int]:
    """run id -> mtime_ns of every valid record."""
    return {
        p.stem: p.stat().st_mtime_ns
        for p in root.rglob("*.json")
        if "failed" not in p.parts and not p.name.startswith(".") and read_record(p)
    }


def test_presets_are_data_and_map_to_the_toy_suite():
    assert preset_names() == ["ablation_dualprompt", "table1", "table2", "table3", "table4"]
    t1 = load_preset("table1")
    assert t1.datasets == ("caltech101", "dtd", "eurosat", "fgvc_aircraft", "oxford_flowers", "ucf101")
    assert (t1.backbone.arch, t1.backbone.pretrained) == ("ViT-B-16", "openai")
    cols = {c.label: (c.strategy, c.adapter) for c in t1.columns}
    assert cols["Ours_CoOp"] == ("dualprompt", "coop") and cols["Ours"] == ("dualprompt", "dualprompt")
    assert [c.label for c in t1.columns][:7] == ["Random", "Entropy", "CoreSet", "BADGE", "ALFA-Mix", "GCNAL", "CEC"]
    assert {c.label for c in t1.columns if c.dash_budgets == (1,)} == {"CoreSet", "ALFA-Mix"}
    t2 = load_preset("table2", "toy")
    assert t2.datasets == ("toy_textures", "toy_fine", "digits") and t2.backbone.arch == "toy-clip"
    assert [c.label for c in t2.columns][-2:] == ["Ours_VPT", "Ours"] and t2.columns[0].adapter == "vpt"
    assert load_preset("table3").columns[-2].label == "Ours_MaPLe"
    assert load_preset("table4").backbone.arch == "ViT-L-14"
    assert load_preset("table1", "toy").datasets == (
        "toy_shapes",
        "toy_textures",
        "toy_shifted",
        "toy_patterns",
        "toy_fine",
        "digits",
    )
    with pytest.raises(UnknownNameError, match="Did you mean: table2"):
        load_preset("table22")


def test_grid_expansion_lists_all_and_budget_checks():
    g = build_grid(
        strategies=["random"], adapters=["coop"], datasets=["digits", "toy_textures"], seeds=[1, 2, 3], rounds=6
    )
    assert len(g.specs) == 6 and {s.seed for s in g.specs} == {1, 2, 3} and g.budgets == (1, 2, 5)
    g = build_grid(strategies=["all"], datasets=["digits"], rounds=2, budgets=[1, 2])
    assert {s.strategy for s in g.specs} == set(STRATEGIES.names())
    with pytest.raises(AlbenchError, match="needs round 5"):
        build_grid(strategies=["random"], datasets=["digits"], rounds=2, budgets=[1, 2, 5])
    with pytest.raises(UnknownNameError, match="Did you mean: digits"):
        build_grid(strategies=["random"], datasets=["digit"])
    # presets: filtered by strategy / dataset (paper or toy names); the budget picks rounds, not runs
    g = build_grid(preset="table1", suite="toy", strategies=["random"], datasets=["dtd", "digits"], seeds=[1])
    assert [(s.dataset, s.label, s.rounds) for s in g.specs] == [("toy_textures", "Random", 6), ("digits", "Random", 6)]
    # scoped options reach only their adapter
    g = build_grid(
        strategies=["random"], datasets=["digits"], adapter_options={"coop:epochs": 3}, rounds=2, budgets=[1]
    )
    assert g.specs[0].adapter_options == {"epochs": 3}


class Boom(Strategy):
    """Fails on every selection."""

    def select(self, ctx):
        raise RuntimeError("boom in selection")


@pytest.fixture
def boom():
    STRATEGIES.register("boom", Boom)
    yield
    STRATEGIES.unregister("boom")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_failure_is_recorded_grid_continues_and_exits_nonzero(tmp_path, boom, warm_digits):
    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["run", "--strategy", "boom,random", *TINY, "--results-dir", str(out)])
    assert res.exit_code == 1, res.output
    assert "1 run(s) done, 0 skipped, 1 failed" in res.output
    assert "boom in selection" in res.output
    fails = list((out / "failed").rglob("*.json"))
    assert len(fails) == 1 and "Traceback" in fails[0].read_text() and "boom" in fails[0].name
    assert len(records(out)) == 1
    st = cli("status", "--strategy", "boom,random", *TINY[:-1], "--results-dir", str(out))
    assert "2 run(s): 1 done, 1 failed, 0 pending" in st.output and "boom in selection" in st.output


@pytest.mark.slow
def test_per_run_lock_makes_a_busy_run_skip(tmp_path, workspace):
    from filelock import FileLock

    from albench.engine.grid import run_state
    from albench.engine.launchers import run_one

    out = tmp_path / "r"
    g = build_grid(
        strategies=["random"],
        datasets=["digits"],
        rounds=2,
        budgets=[1],
        adapter_options={"epochs": 2},
        backbone=__import__("albench.clip.backbone", fromlist=["BackboneSpec"]).BackboneSpec(pretrained="random"),
    )
    spec = g.specs[0]
    st = run_state(spec, out, workspace)
    assert st.state == "pending"
    lock = FileLock(str(out / ".locks" / (st.path.stem + ".lock")))
    (out / ".locks").mkdir(parents=True)
    with lock:
        assert run_state(spec, out, workspace).state == "running"
        assert run_one(spec, out, workspace).status == "busy"
        assert not st.path.exists()
    assert run_one(spec, out, workspace).status == "done"
    assert run_one(spec, out, workspace).status == "skipped"
    assert grid_status(g, out, workspace)[0].state == "done"


@pytest.fixture(scope="module")
def warm_digits(workspace):
    """Encode digits once with the random-init backbone; subprocesses share the session cache."""
    from albench.clip.backbone import BackboneSpec

    bb = workspace.backbone(BackboneSpec(pretrained="random"))
    workspace.bank(bb, workspace.task("digits", None))


def _albench(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "albench.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_kill_halfway_then_rerun_finishes_without_redoing(tmp_path, warm_digits):
    out = tmp_path / "r"
    args = [
        "run",
        "--strategy",
        "random",
        "--seeds",
        "1,2,3,4,5,6,7,8",
        "--dataset",
        "digits",
        "--rounds",
        "3",
        "--budget",
        "1,2",
        "--adapter-opt",
        "epochs=20",
        "--pretrained",
        "random",
        "--no-progress",
        "--results-dir",
        str(out),
    ]
    proc = _albench(*args, env=_env())
    deadline = time.time() + 900  # generous: the CI machine may be shared
    while time.time() < deadline and len(records(out)) < 1 and proc.poll() is None:
        time.sleep(0.02)
    early_exit = proc.poll()
    proc.send_signal(signal.SIGKILL)
    text = proc.communicate()[0]
    before = records(out)
    assert early_exit is None and 1 <= len(before) < 8, f"the grid should have been killed halfway:\n{text[-3000:]}"
    # rerun the same command, with two worker processes this time
    proc = _albench(*args, "--workers", "2", env=_env())
    text, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, text
    after = records(out)
    assert len(after) == 8
    assert {k: after[k] for k in before} == before  # finished records untouched (same ids, same mtimes)
    assert f"{8 - len(before)} run(s) done, {len(before)} skipped, 0 failed" in text
    assert "launcher local x 2 workers" in text


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_two_processes_on_one_results_dir_never_run_a_run_twice(tmp_path, warm_digits):
    out = tmp_path / "r"
    args = ["run", "--strategy", "random", "--seeds", "1,2,3,4", *TINY, "--results-dir", str(out)]
    procs = [_albench(*args, env=_env()) for _ in range(2)]
    texts = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), texts
    done_lines = [ln for t in texts for ln in t.splitlines() if ln.startswith("done ")]
    assert len(done_lines) == 4 and len(set(done_lines)) == 4  # every run executed exactly once
    assert len(records(out)) == 4


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_slurm_launcher_with_submitit_local_executor(tmp_path, warm_digits):
    pytest.importorskip("submitit")
    out = tmp_path / "r"
    args = [
        "run",
        "--strategy",
        "random",
        "--seeds",
        "1,2",
        *TINY,
        "--results-dir",
        str(out),
        "--launcher",
        "slurm",
        "--slurm-executor",
        "local",
        "--slurm-gpus",
        "0",
        "--slurm-cpus",
        "1",
        "--slurm-time",
        "10",
    ]
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert "submitted 2 run(s) as local job array" in res.output and "2 run(s) done" in res.output
    assert len(records(out)) == 2 and (out / ".submitit").is_dir()
    res = cli(*args)  # resume comes from the run itself: nothing is redone
    assert "0 run(s) done, 2 skipped" in res.output


# ---------------------------------------------------------------- option sweeps and ablations
def test_option_sweep_expands_to_one_configuration_per_value():
    from albench.api.options import parse_option_strings

    opts = parse_option_strings(["dualprompt:lam=0.5,1,2", "dualprompt:detach_image=true,false"])
    assert opts == {"dualprompt:lam": (0.5, 1, 2), "dualprompt:detach_image": "true,false"}
    g = build_grid(
        strategies=["random"],
        adapters=["coop", "dualprompt"],
        datasets=["digits"],
        rounds=2,
        seeds=[4, 5],
        adapter_options=opts,
    )
    dp = [s for s in g.specs if s.adapter == "dualprompt"]
    assert len(dp) == 3 * 2 * 2 and len(g.specs) == len(dp) + 2  # coop: no sweep, one configuration x 2 seeds
    combos = {(s.adapter_options["lam"], s.adapter_options["detach_image"]) for s in dp}
    assert combos == {(lam, d) for lam in (0.5, 1, 2) for d in (True, False)}
    assert {s.label for s in dp if s.seed == 4} == {
        f"random lam={x} detach_image={d}" for x in ("0.5", "1", "2") for d in ("true", "false")
    }
    assert all(s.label is None for s in g.specs if s.adapter == "coop")
    with pytest.raises(AlbenchError, match="'yes' is not true or false"):
        build_grid(
            strategies=["random"],
            adapters=["dualprompt"],
            datasets=["digits"],
            rounds=2,
            adapter_options={"detach_image": "true,yes"},
        )
    with pytest.raises(AlbenchError, match="lam"):  # every swept value is validated before anything runs
        build_grid(
            strategies=["random"],
            adapters=["dualprompt"],
            datasets=["digits"],
            rounds=2,
            adapter_options={"lam": (1, "x")},
        )
    with pytest.raises(AlbenchError, match="do not combine with --preset"):
        build_grid(preset="table1", suite="toy", adapter_options={"dualprompt:lam": (1, 2)})


def test_ablation_preset_varies_one_option_at_a_time_and_pins_the_rest():
    p = load_preset("ablation_dualprompt", "toy")
    cols = {c.label: c for c in p.columns}
    assert p.seeds == (4, 5, 6)  # tuning seeds, never the tables' 1-3
    base = cols["Ours"]
    # base values: plugin defaults, then the backbone profile (toy-clip: 6 visual tokens for 64 patches)
    assert dict(base.adapter_options) == {"lam": 1.0, "vpt_tokens": 6, "detach_image": False, "detach_positive": True}
    assert dict(base.strategy_options) == {"K": 16, "k": 16}
    lam0 = cols["Ours lam=0"]
    assert dict(lam0.adapter_options) == {**dict(base.adapter_options), "lam": 0.0}
    assert dict(cols["Ours k=64"].strategy_options) == {"K": 16, "k": 64}
    assert "Ours vpt_tokens=0" in cols and "Ours vpt_tokens=20" in cols and "Ours vpt_tokens=6" not in cols
    assert dict(load_preset("ablation_dualprompt", "paper").columns[1].adapter_options)["vpt_tokens"] == 20
    g = build_grid(preset="ablation_dualprompt", suite="toy", datasets=["digits"])
    assert len(g.specs) == len(p.columns) * 3
    spec = next(s for s in g.specs if s.label == "Ours lam=0" and s.seed == 4)
    assert spec.adapter_options["lam"] == 0.0 and spec.adapter_options["vpt_tokens"] == 6


def _fake_record(adapter_options, acc, seed=4):
    return {
        "dataset": "digits",
        "seed": seed,
        "strategy": "dualprompt",
        "adapter": "dualprompt",
        "backbone": {"arch": "toy-clip"},
        "zero_shot_accuracy": 29.0,
        "num_classes": 10,
        "config": {
            "strategy": "dualprompt",
            "strategy_options": {"K": 16, "k": 16},
            "adapter": "dualprompt",
            "adapter_options": adapter_options,
            "seed": seed,
            "protocol": {"rounds": 2, "round_fraction": 0.01, "round_budget": None},
        },
        "rounds": [
            {"round": 1, "accuracy": acc, "budget_pct": 1.0},
            {"round": 2, "accuracy": acc + 1, "budget_pct": 2.0},
        ],
    }


def test_ablation_cells_read_only_their_own_configuration():
    from albench.reporting.tables import preset_frame

    p = load_preset("ablation_dualprompt", "toy")
    p = __import__("dataclasses").replace(p, datasets=("digits",))
    base = {"lam": 1.0, "vpt_tokens": 6, "detach_image": False, "detach_positive": True, "epochs": 10}
    recs = [
        _fake_record(base, 30.0, 4),
        _fake_record(base, 32.0, 5),
        _fake_record({**base, "lam": 0.0}, 20.0, 4),
        _fake_record({**base, "lam": 2}, 40.0, 4),
    ]
    df, warn = preset_frame(p, recs, budgets=[1], seeds=[4, 5])
    cell = df[(df.dataset == "digits") & (df.budget == 1)].set_index("column")
    assert cell.loc["Ours", "mean"] == 31.0 and cell.loc["Ours", "n"] == 2
    assert cell.loc["Ours lam=0", "mean"] == 20.0 and cell.loc["Ours lam=2", "mean"] == 40.0  # int 2 == 2.0
    assert cell.loc["Ours lam=0.5", "status"] == "missing" and not warn


def test_sweep_columns_stay_apart_in_the_simple_table(tmp_path, workspace):
    from albench.engine.protocol import execute
    from albench.reporting.tables import simple_table

    g = build_grid(
        strategies=["random"],
        adapters=["coop"],
        datasets=["toy_shapes"],
        rounds=1,
        seeds=[4],
        budgets=[1],
        adapter_options={"epochs": (1, 2), "min_steps": 0},
    )
    for spec in g.specs:
        execute(spec, tmp_path, workspace)
    md, frame, notes = simple_table(tmp_path)
    assert set(frame["column"]) == {"random epochs=1", "random epochs=2"} and not notes
