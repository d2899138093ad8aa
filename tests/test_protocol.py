import json

import numpy as np
import pytest

from albench.api.errors import AlbenchError, ContractError
from albench.engine.protocol import RunSpec, execute, round_budget
from albench.engine.records import read_record
from albench.api.strategy import Strategy


def spec(**kw):
    base = dict(
        strategy="random",
        adapter="coop",
        dataset="toy_textures",
        seed=1,
        rounds=3,
        adapter_options={"epochs": 5, "min_steps": 0},
    )
    base.update(kw)
    return RunSpec(**base)


@pytest.mark.slow
def test_same_seed_same_selections_and_accuracies(tmp_path, workspace):
    a = execute(spec(), tmp_path / "a", workspace).record
    b = execute(spec(), tmp_path / "b", workspace).record
    assert [r["selected"] for r in a["rounds"]] == [r["selected"] for r in b["rounds"]]
    assert [r["accuracy"] for r in a["rounds"]] == [r["accuracy"] for r in b["rounds"]]
    c = execute(spec(seed=2), tmp_path / "c", workspace).record
    assert [r["selected"] for r in a["rounds"]] != [r["selected"] for r in c["rounds"]]


def test_record_contents(tmp_path, workspace):
    out = execute(spec(), tmp_path, workspace)
    rec = read_record(out.path)
    assert rec is not None and out.path.name.startswith("random__coop__seed1__")
    pool = rec["pool_size"]
    b = rec["round_budget"]
    assert b == round(0.01 * pool)
    assert [r["labeled"] for r in rec["rounds"]] == [b, 2 * b, 3 * b]
    assert rec["rounds"][0]["budget_pct"] == pytest.approx(100 * b / pool)
    all_sel = sum((r["selected"] for r in rec["rounds"]), [])
    assert len(set(all_sel)) == len(all_sel) == 3 * b
    assert sum(rec["rounds"][1]["selected_class_hist"]) == b
    assert rec["environment"]["torch"] and rec["backbone"]["identity"].startswith("toy-clip:")
    assert rec["plugins"]["strategy"]["distribution"] == "albench"
    # no image is encoded during CoOp training: features are cached
    assert all(r["encoder"]["train"] == 0 for r in rec["rounds"])


def test_rerun_is_skipped_and_overwrite_redoes(tmp_path, workspace):
    first = execute(spec(), tmp_path, workspace)
    again = execute(spec(), tmp_path, workspace)
    assert again.skipped and again.path == first.path
    redo = execute(spec(), tmp_path, workspace, overwrite=True)
    assert not redo.skipped


def test_option_change_gives_new_record(tmp_path, workspace):
    a = execute(spec(), tmp_path, workspace)
    b = execute(spec(adapter_options={"epochs": 4, "min_steps": 0}), tmp_path, workspace)
    assert a.path != b.path and not b.skipped


def test_feature_cache_encodes_each_image_once(tmp_path, workspace):
    from albench.engine.protocol import Workspace

    execute(spec(seed=4), tmp_path / "fill", workspace)  # fills the disk cache if no earlier test did
    fresh = Workspace(workspace.cache.root, device="cpu", progress=False)  # new process-level state, same disk cache
    rec = execute(spec(seed=5), tmp_path, fresh).record
    assert rec["encoder_passes"]["image_encoder_images"] == 0  # everything came from the shared cache


def test_budget_larger_than_pool():
    assert round_budget(spec(), 2000) == 20
    with pytest.raises(AlbenchError, match="need 3000 samples, but the pool of 'toy_textures' has only 2000"):
        round_budget(spec(round_budget=1000), 2000)


class BadStrategy(Strategy):
    name = "bad"

    def select(self, ctx):
        return (
            np.concatenate([ctx.labeled[:1], ctx.unlabeled[: ctx.budget - 1]])
            if ctx.labeled.size
            else ctx.unlabeled[: ctx.budget + 1]
        )


def test_harness_checks_strategy_output(tmp_path, workspace):
    from albench.api.plugins import STRATEGIES

    STRATEGIES.register("bad", BadStrategy)
    request_cleanup = STRATEGIES.unregister
    try:
        with pytest.raises(ContractError, match="returned 21 indices in round 1; the budget is 20"):
            execute(spec(strategy="bad"), tmp_path, workspace)
    finally:
        request_cleanup("bad")
    failed = list((tmp_path / "failed").rglob("*.json"))
    assert len(failed) == 1 and "ContractError" in json.loads(failed[0].read_text())["error"]
    assert not list((tmp_path / "toy_textures").glob("*.json"))


@pytest.mark.slow
def test_random_coop_beats_zero_shot(tmp_path, workspace):
    """Done-criterion of the foundation issue: on a task with zero-shot < 70 %, the last round wins."""
    rec = execute(spec(dataset="digits", rounds=6, adapter_options={}), tmp_path, workspace).record
    assert rec["zero_shot_accuracy"] < 70
    assert rec["rounds"][-1]["accuracy"] > rec["zero_shot_accuracy"] + 3
