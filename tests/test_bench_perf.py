"""Bench sections harness / peer-protocol / scaling and the GPU script, at tiny sizes (not timed)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from albench.bench import SECTIONS, gpu, harness, peer, scaling
from albench.bench.synthetic import NeverDecoded, exponent, feature_task, prefilled_bank
from albench.api.errors import AlbenchError

pytestmark = [pytest.mark.perf]


def test_sections_registered():
    for name in ("harness", "peer-protocol", "scaling"):
        assert name in SECTIONS


def _fake_vit(width=768, layers=12, patch=16, image=224):
    blk = SimpleNamespace(mlp=SimpleNamespace(c_fc=torch.nn.Linear(1, 4 * width, bias=False)))
    visual = SimpleNamespace(
        conv1=SimpleNamespace(out_channels=width, kernel_size=(patch, patch)),
        transformer=SimpleNamespace(resblocks=[blk] * layers),
        positional_embedding=torch.zeros((image // patch) ** 2 + 1, 1),
    )
    return SimpleNamespace(model=SimpleNamespace(visual=visual))


def test_vit_flops_matches_known_counts():
    f = gpu.vit_flops(_fake_vit())  # ViT-B/16 at 224: 17.6 GMACs = 35.2 GFLOPs forward
    assert f["forward"] / 1e9 == pytest.approx(35.2, rel=0.01)
    lin = 12 * 2 * 197 * 12 * 768**2
    attn = 12 * 4 * 197**2 * 768
    assert f["train"] - f["forward"] == pytest.approx(lin + 2 * attn)  # input gradients only
    assert gpu.vit_flops(_fake_vit(1024, 24, 14))["forward"] / 1e9 == pytest.approx(162, rel=0.02)  # ViT-L/14


def test_project_table1_formula():
    ds = [{"dataset": "dtd", "pool": 200, "test": 100, "classes": 4}]
    zero = {
        "encode_rate": 100.0,
        "prompted_rate": 1e30,
        "coop_step_s": {4: 0.0},
        "dp_step_s": {4: 0.0},
        "select_s": {"dtd": {s: 0.0 for s in gpu.BASELINES}},
        "coop_eval_s": 0.0,
        "coop_options": {},
    }
    assert gpu.project_table1(ds, zero)["total_s"] == pytest.approx(3.0)  # (200 + 100) / 100, encoded once
    one = {**zero, "coop_step_s": {4: 1.0}, "coop_options": {"min_steps": 0, "epochs": 1}}
    p = gpu.project_table1(ds, one, rounds=2, seeds=1)
    # b = 2 labels per round: rounds of 2 and 4 labels -> 1 step each; 7 baselines + Ours_CoOp train CoOp
    assert p["datasets"][0]["random_run_s"] == pytest.approx(2.0)
    assert p["total_s"] == pytest.approx(3.0 + 8 * 2.0)
    assert gpu._interp({10: 1.0, 100: 10.0}, 55) == pytest.approx(5.5)


def test_calibration_reproduces_the_measured_trajectory():
    ds = {"dataset": "dtd", "pool": 200, "test": 100, "classes": 4}
    m = {
        "encode_rate": 100.0,
        "prompted_rate": 1e30,
        "coop_step_s": {4: 0.01},
        "dp_step_s": {4: 0.0},
        "select_s": {"dtd": {s: 0.5 for s in gpu.BASELINES}},
        "coop_eval_s": 0.0,
        "coop_options": {"min_steps": 0, "epochs": 1},
    }
    measured = {"strategy": "entropy", "total_s": 10.0, "mean_evaluate_s": 0.2}
    cal = gpu.calibrate(m, measured, ds, rounds=2)
    assert cal["coop_eval_per_image"] == pytest.approx(0.002)
    # per round: select 0.5 + 1 step x 0.01 + eval 0.2 = 0.71; overhead = (10 - 1.42) / 2
    assert cal["round_overhead_s"] == pytest.approx((10.0 - 1.42) / 2)
    assert gpu.single_run_seconds(ds, cal, "entropy", 2) == pytest.approx(10.0)
    far = gpu.self_check(cal, {**measured, "total_s": 12.0}, ds, rounds=2)
    assert far["error_pct"] == pytest.approx(-16.7, abs=0.05) and not far["within_10_pct"]
    assert gpu.self_check(cal, {**measured, "total_s": 10.5}, ds, rounds=2)["within_10_pct"]


def test_table1_sizes_come_from_catalog():
    from albench.data.datasets import COOP_SPLITS

    ds = {d["dataset"]: d for d in gpu.table1_datasets(gpu.GPU_SIZES)}
    assert set(ds) == set(gpu.TABLE1_DATASETS)
    assert ds["dtd"] == {
        "dataset": "dtd",
        "pool": COOP_SPLITS["dtd"].train,
        "test": COOP_SPLITS["dtd"].test,
        "classes": 47,
    }


def test_feature_task_never_decodes_and_bank_never_encodes():
    from albench.clip.backbone import Backbone, BackboneSpec

    task = feature_task("t", 50, 10, 3)
    with pytest.raises(AlbenchError):
        task.pool.source.load([0], 32)
    assert isinstance(task.pool.source, NeverDecoded)
    bank = prefilled_bank(Backbone.load(BackboneSpec(), device="cpu"), task)
    assert bank.features("pool").shape[0] == 50
    with pytest.raises(AlbenchError):
        bank.pixel_cache("pool")
    assert exponent(1000, 1.0, 10000, 10.0) == pytest.approx(1.0)


@pytest.mark.slow
def test_scaling_measures_rounds_in_process():
    rows = scaling.measure_size(300, ["random", "coreset"])
    assert [r["strategy"] for r in rows] == ["random", "coreset"]
    for r in rows:
        assert "error" not in r, r
        assert r["budget"] == 3 and r["labeled"] == 6 and r["encoder_passes"] == 0
        assert r["round_s"] > 0 and r["peak_mib"] >= 0
    summ = scaling.summarise(
        rows + [{**r, "pool": 3000, "select_s": r["select_s"] * 10, "round_s": r["round_s"] * 10} for r in rows],
        (300, 3000),
    )
    assert summ[0]["k_round 0k→3k"] == pytest.approx(1.0)


@pytest.mark.slow
def test_harness_encode_once_ratio():
    sec = harness.run(
        quick=True, datasets=["dtd"], strategies=["random", "entropy"], rounds=1, include_dualprompt=False
    )
    coop, zs = sec["rows"]
    assert coop["failed"] == 0 and zs["failed"] == 0
    assert coop["ratio_to_minimum"] == 1.0  # every image encoded exactly once
    assert zs["image_encoder_passes"] == 0 and zs["cumulative_ratio"] == 1.0
    assert coop["cpu_s"] > 0 and coop["wall_s"] > 0


@pytest.mark.slow
def test_peer_protocol_ratios_on_toy_backbone():
    from albench.clip.backbone import BackboneSpec

    sec = peer.run(
        quick=True,
        sizes={"pool": 12, "test": 4, "classes": 3, "labeled": 8, "blocks": 3, "block_steps": 7},
        backbone_spec=BackboneSpec(),
    )
    ref, cold, warm = sec["rows"]
    assert cold["image_encoder_passes"] == 16  # pool + test, once
    assert ref["image_encoder_passes"] == 12 + 8 * 200 + 4  # pool + batch x 200 epochs + test
    assert "21 measured steps in 3 blocks" in ref["train_figures"] and "168 passes" in ref["train_figures"]
    assert sec["ratios"]["passes"] == pytest.approx(ref["image_encoder_passes"] / 16, abs=0.05)
    assert warm["image_encoder_passes"] == 0
    assert set(sec["ratios"]) == {"time_cold_cpu", "time_warm_cpu", "time_cold_wall", "time_warm_wall", "passes"}
    assert all(v > 0 for v in sec["ratios"].values())


def test_peer_protocol_refuses_projection_from_few_steps():
    with pytest.raises(ValueError, match="at least 20 measured steps"):
        peer.run(quick=True, sizes={"pool": 12, "test": 4, "classes": 3, "labeled": 8, "blocks": 3, "block_steps": 6})


@pytest.mark.slow
def test_gpu_dry_run_writes_report(tmp_path):
    sizes = dataclasses.replace(gpu.DRY_SIZES, archs=("ViT-B-16",))
    res = gpu.run_gpu(dry_run=True, out_dir=tmp_path, sizes=sizes)
    data = json.loads((tmp_path / "bench_gpu_dryrun.json").read_text())
    assert data["dry_run"] is True and (tmp_path / "bench_gpu_dryrun.md").exists()
    whats = {r["what"] for r in data["throughput"]}
    assert whats == {"encode (no grad)", "train vpt", "train maple", "train dualprompt"}
    assert all(r["images_per_s"] > 0 for r in data["throughput"])
    assert len(data["table1_projection"]["datasets"]) == 6
    assert res["targets"]["table1_projected_min"] > 0
    assert data["dtd_coop_trajectory"]["projected_entropy_run_s"] > 0
    assert [w["workers"] for w in data["workers"]] == [1, 2] and data["workers"][0]["speedup"] == 1.0
    assert all(w["trajectories_per_min"] > 0 for w in data["workers"])
    chk = data["self_check"]
    assert chk["dataset"] == "eurosat" and chk["strategy"] == "random" and chk["measured_s"] > 0
    assert chk["within_10_pct"] == (abs(chk["error_pct"]) <= 10)
    wall = data["table1_projection"]["wall"]
    assert wall["optimistic_min"] <= wall["conservative_min"] <= wall["serial_min"]
    assert res["targets"]["table1_projected_min"] == wall["conservative_min"]


def test_cli_dry_run_needs_gpu():
    from albench.cli.main import main

    r = CliRunner().invoke(main, ["bench", "--dry-run"])
    assert r.exit_code == 2 and "--gpu" in r.output


@pytest.mark.slow
def test_coop_step_section_reports_floor_ratio():
    from albench.bench import coop_step

    assert SECTIONS.info("coop-step").target == "albench.bench.coop_step:run"
    sec = coop_step.run(quick=True, cases=(("toy", None, 5),), block_steps=2, warmup=1, repeats=3, compiled=False)
    (row,) = sec["rows"]
    assert row["classes"] == 5 and row["text_layers"] == 3 and row["step_mflop"] > 0 and row["gemm_gflops"] > 0
    floor_ms = row["step_mflop"] * 1e6 / (row["gemm_gflops"] * 1e9) * 1e3
    assert row["floor_ms"] == pytest.approx(floor_ms, rel=0.05)
    assert set(sec["ratios"]) == {"toy_eager_floor"} and sec["ratios"]["toy_eager_floor"] > 0


def test_step_flops_counts_forward_and_backward():
    from albench.bench.coop_step import step_flops

    w = torch.nn.Parameter(torch.randn(8, 4))
    x = torch.randn(16, 8)
    ad = SimpleNamespace(prompt=SimpleNamespace(ctx=w))
    flops = step_flops(ad, lambda lb, pb: (x @ w).sum(), SimpleNamespace(pool=SimpleNamespace(labels=list(range(16)))))
    assert flops["total"] == 2 * 16 * 8 * 4 * 2  # forward x @ w and the gradient x.T @ dY (x needs none)


def test_selection_with_the_run_device_equals_the_cpu_path_on_cpu():
    """A context with the run's env (device_of -> its device) and one without (-> CPU) pick the same on a CPU."""
    from albench.clip.backbone import Backbone, BackboneSpec

    bb = Backbone.load(BackboneSpec(), device="cpu")
    rows = gpu.check_selection_devices(bb, {"dataset": "eurosat", "pool": 400, "test": 20, "classes": 5})
    assert [r["strategy"] for r in rows] == ["coreset", "badge", "typiclust", "cec", "gcnal"]
    assert all(r["same_order"] and r["same_set_pct"] == 100.0 and r["budget"] == 4 for r in rows), rows


@pytest.mark.slow
def test_batched_runs_section_times_both_arms_and_checks_their_records():
    from albench.bench import batched

    assert SECTIONS.info("batched-runs").target == "albench.bench.batched:run"
    sec = batched.run(quick=True, datasets=("digits",), seeds=(1, 2), rounds=1, repeats=2)
    (row,) = sec["rows"]
    assert row["runs"] == 2 and row["classes"] == 10 and row["records_equal"] is True
    assert row["speedup_cpu"] > 0 and set(sec["ratios"]) == {"digits_speedup_cpu"}


def test_batched_runs_section_compares_records_without_timings(tmp_path):
    from albench.bench.batched import _stripped

    rec = {
        "timing": {"total_seconds": 1},
        "provenance": {},
        "rounds": [{"seconds": {}, "train": {"seconds": 1, "steps": 3}}],
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.json").write_text(json.dumps(rec))
    rec["timing"] = {"total_seconds": 2}
    rec["rounds"][0]["train"]["seconds"] = 7
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "r.json").write_text(json.dumps(rec))
    assert _stripped(tmp_path / "a") == _stripped(tmp_path / "b")
    rec["rounds"][0]["train"]["steps"] = 4  # a non-timing field differs: not equal
    (tmp_path / "b" / "r.json").write_text(json.dumps(rec))
    assert _stripped(tmp_path / "a") != _stripped(tmp_path / "b")


@pytest.mark.slow
def test_dualprompt_step_section_reports_floor_and_the_columns_projection():
    from albench.bench import dualprompt_step

    assert SECTIONS.info("dualprompt-step").target == "albench.bench.dualprompt_step:run"
    sec = dualprompt_step.run(quick=True, tasks=("digits",), block_steps=2, warmup=1, repeats=1)
    row, proj = sec["rows"]
    assert row["classes"] == 10 and row["step_gflop"] > 1  # 80 images through the prompted tower, both ways
    assert row["floor_ms"] == pytest.approx(row["step_gflop"] * 1e9 / (row["gemm_gflops"] * 1e9) * 1e3, rel=0.05)
    steps = 3 * (7 + 6) * 200  # 3 seeds x (Ours 7 + Ours_CoOp 6 trainings) x 200 steps
    assert proj["columns_floor_cpu_s"] == pytest.approx(steps * row["floor_ms"] / 1e3, rel=0.01)
    assert proj["columns_floor_wall_min"] == pytest.approx(proj["columns_floor_cpu_s"] / 2 / 60, abs=0.1)
