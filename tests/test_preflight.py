"""The one preflight: its check registry, its problems, and that it writes nothing."""

import pytest

from albench.api.errors import AlbenchError
from albench.engine import preflight as pf
from albench.engine.grid import build_grid


def _ctx(tmp_path, **kw):
    grid = build_grid(strategies=["random"], adapters=["coop"], datasets=["digits"], seeds=[1], rounds=1)
    return pf.GridContext.from_grid(grid, tmp_path / "results", tmp_path / "cache", **kw)


def test_clean_grid_has_no_problem_and_writes_nothing(tmp_path):
    assert pf.preflight(_ctx(tmp_path, device="cpu")) == []
    assert list(tmp_path.iterdir()) == []  # neither results nor cache directory created


def test_registered_check_runs_and_its_problem_is_reported(tmp_path):
    def check_no_seed_one(ctx):
        for s in ctx.specs:
            if s.seed == 1:
                yield pf.Problem("--seeds", "1", "Seed 1 is reserved here.", "Use seed 2.")

    def check_raises(ctx):
        raise AlbenchError("a check may also raise")

    pf.check(check_no_seed_one)
    pf.check(check_raises)
    try:
        problems = pf.preflight(_ctx(tmp_path, device="cpu"))
        assert problems == [
            pf.Problem("--seeds", "1", "Seed 1 is reserved here.", "Use seed 2."),
            pf.Problem("raises", "", "a check may also raise"),
        ]
        assert problems[0].text() == "Seed 1 is reserved here. Use seed 2."
        with pytest.raises(pf.PreflightError) as err:
            pf.require(_ctx(tmp_path, device="cpu"))
        assert err.value.problems == problems and err.value.exit_code == 2
    finally:
        pf.CHECKS.remove(check_no_seed_one)
        pf.CHECKS.remove(check_raises)


def test_device_and_precision_problems_name_the_option(tmp_path):
    (p,) = pf.preflight(_ctx(tmp_path, device="gpu"))
    assert (p.field, p.value) == ("--device", "gpu") and "Valid: auto, cpu, cuda, cuda:N" in p.message
    (p,) = pf.preflight(_ctx(tmp_path, device="cpu", precision="fp16"))
    assert (p.field, p.value, p.message) == (
        "--precision",
        "fp16",
        "Unknown --precision 'fp16'. Valid: fp32, bf16, auto.",
    )


def test_the_default_toy_backbone_is_refused_for_real_data_only(tmp_path):
    grid = build_grid(
        strategies=["random"],
        adapters=["coop"],
        datasets=["dtd", "digits"],
        seeds=[1],
        rounds=1,
        data_root=str(tmp_path),
    )
    assert grid.default_backbone
    ctx = pf.GridContext.from_grid(grid, tmp_path / "r", device="cpu")
    (p,) = pf.preflight(ctx, [pf.check_backbone_choice])
    assert p.field == "--backbone" and p.message.startswith("Dataset(s) dtd hold real images")
    from albench.clip.backbone import BackboneSpec

    chosen = build_grid(
        strategies=["random"],
        adapters=["coop"],
        datasets=["dtd"],
        seeds=[1],
        rounds=1,
        backbone=BackboneSpec("toy-clip"),
    )
    assert not chosen.default_backbone
    assert pf.preflight(pf.GridContext.from_grid(chosen, device="cpu"), [pf.check_backbone_choice]) == []
