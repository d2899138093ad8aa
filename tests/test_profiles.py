"""Backbone profiles: one place for backbone-dependent defaults, applied by every entry point."""

import pytest

from albench.clip.backbone import BackboneSpec
from albench.clip.profiles import apply_profile, profile_for, visual_tokens_for
from albench.engine.protocol import RunSpec, config_hash, run_config


def test_paper_backbones_keep_the_paper_values():
    for arch in ("ViT-B-16", "ViT-L-14", "ViT-B-16-quickgelu"):
        assert profile_for(arch).overrides == {} and profile_for(arch).caption() == ""
    spec = RunSpec("dualprompt", "vpt", "dtd", backbone=BackboneSpec("ViT-B-16", "openai"))
    assert apply_profile(spec) == spec


def test_toy_profile_rescales_by_patch_ratio_and_caps_depth():
    prof = profile_for("toy-clip")
    assert prof.patches == 64 and prof.tower_depth == 3
    assert visual_tokens_for(64) == 6 and visual_tokens_for(196) == 20 and visual_tokens_for(1) == 1
    assert prof.defaults("adapter", "vpt") == {"n_tokens": 6}
    assert prof.defaults("adapter", "dualprompt") == {"vpt_tokens": 6}
    assert prof.defaults("strategy", "dualprompt") == {"vpt_tokens": 6}
    assert prof.defaults("adapter", "maple") == {"depth": 3}
    assert prof.defaults("adapter", "coop") == {}
    assert "6 visual prompt tokens for 64 patches" in prof.caption() and "MaPLe depth 3" in prof.caption()
    assert profile_for("toy-clip-v1").defaults("adapter", "vpt") == {"n_tokens": 1}


def test_explicit_options_win_over_the_profile():
    spec = apply_profile(RunSpec("dualprompt", "dualprompt", "digits", adapter_options={"vpt_tokens": 0}))
    assert spec.adapter_options == {"vpt_tokens": 0} and spec.strategy_options == {"vpt_tokens": 6}


def _hashes(grid, workspace):
    out = {}
    for s in grid.specs:
        task = workspace.task(s.dataset, None, s.dataset_options)
        out[s.label or f"{s.strategy}/{s.adapter}"] = config_hash(run_config(s, task, workspace.backbone(s.backbone)))
    return out


@pytest.mark.parametrize("preset", ["table1", "table2", "table3"])
def test_plain_run_equals_the_toy_suite_ours_columns(preset, workspace):
    """`albench run --strategy dualprompt --adapter dualprompt` (and `--adapter coop`) with no other option run
    exactly the toy suite's "Ours" (and Table 1's "Ours_CoOp") configuration."""
    from albench.engine.grid import build_grid

    table = _hashes(build_grid(preset=preset, suite="toy", datasets=["ucf101"], seeds=[1]), workspace)
    ours = _hashes(build_grid(strategies=["dualprompt"], adapters=["dualprompt"]), workspace)
    assert table["Ours"] == ours["dualprompt/dualprompt"]
    if preset == "table1":
        coop = _hashes(build_grid(strategies=["dualprompt"], adapters=["coop"]), workspace)
        assert table["Ours_CoOp"] == coop["dualprompt/coop"]
    other = _hashes(
        build_grid(strategies=["dualprompt"], adapters=["dualprompt"], adapter_options={"vpt_tokens": 0}), workspace
    )
    assert other["dualprompt/dualprompt"] != table["Ours"]  # the hash does see the option


def test_profile_is_in_the_config_and_reaches_the_adapter(workspace, tmp_path, monkeypatch):
    from albench.api.plugins import ADAPTERS
    from albench.engine.protocol import execute

    cls = ADAPTERS.get("vpt")
    seen = []
    original = cls.__init__

    def spy(self, env, **options):
        seen.append(dict(options))
        original(self, env, **options)

    monkeypatch.setattr(cls, "__init__", spy)
    spec = RunSpec("random", "vpt", "digits", rounds=1, round_budget=10, adapter_options={"epochs": 1})
    rec = execute(spec, tmp_path, workspace).record
    assert rec["config"]["adapter_options"]["n_tokens"] == 6
    assert rec["config"]["backbone_profile"]["overrides"]["adapter:vpt"] == {"n_tokens": 6}
    assert seen and all(o.get("n_tokens") == 6 for o in seen)


def test_table_caption_names_what_differs_from_the_paper():
    import pandas as pd

    from albench.engine.grid import load_preset
    from albench.reporting.tables import caption

    empty = pd.DataFrame({"status": [], "dataset": [], "column": []})
    toy = caption(load_preset("table2", suite="toy"), empty, [1, 2, 5])
    assert "toy-clip: 6 visual prompt tokens for 64 patches (paper: 20 for 196)" in toy
    assert "visual prompt tokens" not in caption(load_preset("table2", suite="paper"), empty, [1, 2, 5])
