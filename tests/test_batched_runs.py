"""Batched runs: runs of one column that train together give the records they give one by one.

``protocol.execute_together`` runs trajectories in lock step and hands the adapters whose
``batch_key`` agree to one ``fit_together`` call (CoOp: R context sets through one text-tower call,
``albench.clip.text_prefix.encode_shared_prefixes``). Each test pins one rule: equality with the
one-by-one records, that the batch really shared the call, that one run's failure stays its own,
and how the grid forms its units.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import helpers
from albench.clip.backbone import Backbone
from albench.components.training import TrainConfig, TrainJob, train_together
from albench.engine.launchers import batch_units
from albench.engine.protocol import RunSpec, execute, execute_together

FAST = {"epochs": 2, "min_steps": 40}


def _specs(strategy: str, seeds=(1, 2, 3), **adapter_options) -> list[RunSpec]:
    return [
        RunSpec(strategy, "coop", "digits", seed=s, rounds=3, adapter_options={**FAST, **adapter_options})
        for s in seeds
    ]


def _records(outcomes) -> list[dict]:
    return [helpers.strip_timing(json.loads(o.path.read_text())) for o in outcomes]


@pytest.fixture
def shared_calls(monkeypatch):
    """How many learners each batched text-tower call carried."""
    calls: list[int] = []
    real = Backbone.encode_text_shared_prefixes

    def spy(self, prefixes, suffix, eot):
        calls.append(prefixes.shape[0])
        return real(self, prefixes, suffix, eot)

    monkeypatch.setattr(Backbone, "encode_text_shared_prefixes", spy)
    return calls


@pytest.mark.parametrize("strategy", ["random", "badge"])
def test_batched_runs_write_the_records_of_runs_one_by_one(strategy, workspace, tmp_path, shared_calls):
    specs = _specs(strategy)
    execute(specs[0], tmp_path / "warm-up", workspace)  # both sides read a warm feature cache (no caching passes)
    alone = [execute(sp, tmp_path / "alone", workspace) for sp in specs]
    assert shared_calls == []  # alone, no batched call
    together = execute_together(specs, tmp_path / "together", workspace)
    assert shared_calls and set(shared_calls) == {3}  # every step of every round: the three seeds in one call
    assert len(shared_calls) == sum(r["train"]["steps"] for r in together[0].record["rounds"])
    assert _records(together) == _records(alone)
    assert [o.path.name for o in together] == [o.path.name for o in alone]


def test_batched_run_own_time_is_its_share_not_the_whole_group(workspace, tmp_path):
    specs = _specs("random")
    together = execute_together(specs, tmp_path, workspace)
    for o in together:
        fit = sum(r["seconds"]["train"] for r in o.record["rounds"])
        assert 0 < fit < o.record["timing"]["total_seconds"]
    steps = [r["train"]["seconds"] for r in together[0].record["rounds"]]
    assert steps == [r["train"]["seconds"] for r in together[1].record["rounds"]]  # one loop, shared equally


def test_one_run_failing_in_a_batch_fails_alone(workspace, tmp_path, monkeypatch):
    """Seed 2's loss turns non-finite at its 5th step: its failure record names that step; seeds 1 and 3
    write the records they write one by one."""
    import albench_adapters.coop as coop

    real = coop.CoOp._loss
    steps: dict[int, int] = {}

    def poisoned(self, feats, text, lb, g_view):
        loss = real(self, feats, text, lb, g_view)
        if self.env.seed == 2 and self.env.round == 2:
            steps[id(self)] = steps.get(id(self), 0) + 1
            if steps[id(self)] >= 5:
                return loss * float("nan")
        return loss

    specs = _specs("random")
    execute(specs[0], tmp_path / "warm-up", workspace)
    alone = [execute(sp, tmp_path / "alone", workspace) for sp in (specs[0], specs[2])]
    monkeypatch.setattr(coop.CoOp, "_loss", poisoned)
    together = execute_together(specs, tmp_path / "together", workspace)
    assert isinstance(together[1], Exception)
    assert "coop round 2: training loss became nan at step 5 of" in str(together[1])
    failures = list((tmp_path / "together").rglob("failed/**/*.json"))
    assert len(failures) == 1 and "seed2" in failures[0].name
    assert _records([together[0], together[2]]) == _records(alone)


def test_train_together_refuses_jobs_with_different_step_counts():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    jobs = [
        TrainJob([p], helpers_labeled(16), None, torch.Generator().manual_seed(0)),
        TrainJob([q], helpers_labeled(48), None, torch.Generator().manual_seed(1)),
    ]
    with pytest.raises(ValueError, match=r"one step count, got \[2, 6\]"):
        train_together(jobs, lambda b: [(p**2).sum() + 1, (q**2).sum() + 1], TrainConfig(epochs=2, batch_size=16))


def helpers_labeled(n: int):
    from albench.api.adapter import Labeled

    return Labeled(np.arange(n), np.arange(n) % 2)


def test_grid_units_group_the_seeds_of_a_column_up_to_the_batch_size():
    specs = [
        RunSpec(s, a, d, seed=seed)
        for d in ("digits", "toy_shapes")
        for s, a in (("random", "coop"), ("random", "vpt"), ("entropy", "coop"))
        for seed in (1, 2, 3, 4)
    ]
    units = batch_units(specs, 3)
    assert sorted(sp.slug() + sp.dataset for u in units for sp in u) == sorted(sp.slug() + sp.dataset for sp in specs)
    coop_units = [[(sp.dataset, sp.strategy, sp.seed) for sp in u] for u in units if u[0].adapter == "coop"]
    assert coop_units[:2] == [
        [("digits", "random", 1), ("digits", "random", 2), ("digits", "random", 3)],
        [("digits", "random", 4)],
    ]
    assert all(len(u) == 1 for u in units if u[0].adapter == "vpt")  # VPT trains alone (no fit_together)
    assert all(len({(sp.dataset, sp.strategy) for sp in u}) == 1 for u in units)
    assert [len(u) for u in batch_units(specs, 1)] == [1] * len(specs)
    differ = [RunSpec("random", "coop", "digits", seed=1), RunSpec("random", "coop", "digits", seed=2, rounds=3)]
    assert [len(u) for u in batch_units(differ, 3)] == [1, 1]  # another protocol: another unit


def test_batch_runs_below_one_is_refused_before_anything_runs(tmp_path):
    res = helpers.cli("run", *helpers.GRID, "--batch-runs", "0", "--results-dir", tmp_path / "r")
    assert res.exit_code == 2
    assert "--batch-runs" in res.output and "0" in res.output
    assert not (tmp_path / "r").exists()


def test_an_interrupt_inside_a_batch_reports_the_runs_already_written(workspace, tmp_path, monkeypatch):
    """Ctrl-C after seed 1's record is written but before seed 2's: seed 1 counts as finished."""
    import albench.engine.protocol as protocol
    from albench.engine.launchers import Interrupted, run_local

    real, calls = protocol.check_record, []

    def interrupt_second(record):
        calls.append(record["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(record)

    monkeypatch.setattr(protocol, "check_record", interrupt_second)
    specs = _specs("random", seeds=(1, 2), **{"min_steps": 5, "epochs": 1})
    with pytest.raises(Interrupted) as stop:
        run_local(specs, tmp_path, ws_factory=lambda: workspace, batch_runs=3, progress=False)
    assert calls == [1, 2]  # one unit: both seeds finished training together
    assert [(r.slug, r.status) for r in stop.value.results] == [("random__coop__seed1", "done")]
    assert [sp.seed for sp in stop.value.not_finished] == [2]
    assert [p.name.split("__")[2] for p in (tmp_path / "digits").glob("*.json")] == ["seed1"]
