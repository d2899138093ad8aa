"""Device and precision: resolved up front, part of every identity, and bf16 runs on the CPU too."""

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from albench.api.errors import AlbenchError
from albench.clip.backbone import Backbone, BackboneSpec
from albench.clip.compute import resolve_compute, set_deterministic


def test_auto_precision_and_device_checks():
    c = resolve_compute("cpu", "auto")
    assert (c.device.type, c.precision, c.key()) == ("cpu", "fp32", "cpu-fp32")
    assert resolve_compute("cpu", "bf16").precision == "bf16"  # CPU autocast
    with pytest.raises(AlbenchError, match=r"Unknown --device 'gpu'\. Valid: auto, cpu, cuda, cuda:N\."):
        resolve_compute("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(AlbenchError, match="--device cuda:1: no CUDA GPU is visible on this machine"):
            resolve_compute("cuda:1")


def test_bf16_on_cpu_runs_the_reduced_precision_path(toy_backbone):
    bf = Backbone.load(BackboneSpec(), device="cpu", precision="bf16")
    x = torch.randn(4, 3, toy_backbone.image_size, toy_backbone.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with bf.autocast():
            low = bf.encode_images(x)
        with toy_backbone.autocast():
            full = toy_backbone.encode_images(x)
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert (low.float() - full).abs().max() > 0  # really computed in bf16 ...
    assert F.cosine_similarity(low.float(), full).min() > 0.99  # ... and still the same features


def test_precision_and_device_type_enter_the_feature_key_and_the_run_hash(toy_backbone, workspace):
    from albench.data.features import DataBank
    from albench.engine.protocol import RunSpec, config_hash, run_config

    bf = Backbone.load(BackboneSpec(), device="cpu", precision="bf16")
    task = workspace.task("digits", None)
    k32, k16 = DataBank(toy_backbone, task).feature_key("pool"), DataBank(bf, task).feature_key("pool")
    assert k32 != k16 and "|cpu-fp32|" in k32 and "|cpu-bf16|" in k16
    spec = RunSpec("random", "coop", "digits")
    c32, c16 = run_config(spec, task, toy_backbone), run_config(spec, task, bf)
    assert c32["compute"] == {"device": "cpu", "precision": "fp32"} and c16["compute"]["precision"] == "bf16"
    assert config_hash(c32) != config_hash(c16)


@pytest.fixture
def restore_determinism():
    before = torch.are_deterministic_algorithms_enabled()
    yield
    set_deterministic(before)


def test_record_says_precision_device_and_determinism(tmp_path, restore_determinism):
    from albench.cli.main import main

    args = [
        "run",
        "--strategy",
        "random",
        "--adapter",
        "coop",
        "--dataset",
        "digits",
        "--seeds",
        "1",
        "--rounds",
        "1",
        "--adapter-opt",
        "coop:epochs=1",
        "--adapter-opt",
        "coop:min_steps=0",
        "--device",
        "cpu",
        "--no-progress",
        "--precision",
        "bf16",
        "--deterministic",
        "--results-dir",
        str(tmp_path / "r"),
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert torch.are_deterministic_algorithms_enabled()
    (path,) = (tmp_path / "r" / "digits").glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["compute"] == {"device": "cpu", "precision": "bf16", "deterministic": True}
    assert rec["config"]["compute"] == {"device": "cpu", "precision": "bf16"}
    assert rec["backbone"]["precision"] == "bf16" and rec["backbone"]["quick_gelu_reason"]


def test_status_finds_runs_recorded_with_another_precision(tmp_path):
    from albench.cli.main import main

    grid = [
        "--strategy",
        "random",
        "--adapter",
        "coop",
        "--dataset",
        "digits",
        "--seeds",
        "1",
        "--rounds",
        "1",
        "--adapter-opt",
        "coop:epochs=1",
        "--adapter-opt",
        "coop:min_steps=0",
        "--device",
        "cpu",
        "--results-dir",
        str(tmp_path / "r"),
    ]
    assert CliRunner().invoke(main, ["run", *grid, "--precision", "bf16", "--no-progress"]).exit_code == 0
    st = CliRunner().invoke(main, ["status", *grid])  # asks for cpu/fp32 (auto on a CPU)
    assert st.exit_code == 0, st.output
    assert "1 run(s): 1 done, 0 failed, 0 pending" in st.output
    assert "recorded with cpu/bf16, not cpu/fp32 as asked" in st.output
    st = CliRunner().invoke(main, ["status", *grid, "--precision", "bf16"])
    assert "1 done" in st.output and "as asked" not in st.output


def test_python_api_takes_precision_and_runs_the_preflight(tmp_path):
    import albench.experiments as ax
    from albench.engine.preflight import PreflightError

    rec = ax.run("random", "zeroshot", "digits", rounds=1, device="cpu", precision="bf16", results_dir=tmp_path / "r")
    assert rec["compute"]["precision"] == "bf16" and rec["config"]["compute"] == {"device": "cpu", "precision": "bf16"}
    with pytest.raises(PreflightError) as err:
        ax.run("random", "zeroshot", "digits", rounds=1, device="gpu", results_dir=tmp_path / "s")
    assert [p.field for p in err.value.problems] == ["--device"] and not (tmp_path / "s").exists()
