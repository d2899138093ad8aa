"""Generic imagefolder/csv task types, the `albench data` commands, and dataset options in run configs."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from albench.api.errors import DataError
from albench.data.tasks import load_task


def _img(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((10, 14, 3), value, dtype=np.uint8)).save(path)


@pytest.fixture()
def folder_tree(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for c, cls in enumerate(("red_fox", "cat")):
            for k in range(n):
                _img(
                    tmp_path / "mine" / split / cls / f"{k}.png", 40 * c + k + (20 if split == "test" else 0)
                )  # no train/test overlap
    return tmp_path


def test_imagefolder(folder_tree):
    task = load_task("imagefolder", data_root=str(folder_tree), path="mine", template="a photo of my {}.")
    assert task.classnames == ["cat", "red fox"] and task.template == "a photo of my {}."
    assert (len(task.pool), len(task.test), task.val) == (6, 4, None)
    assert np.bincount(task.pool.labels).tolist() == [3, 3]
    assert task.pool.source.relpaths[0] == "train/cat/0.png"
    assert task.test.source.load(np.arange(4), 8).shape == (4, 8, 8, 3)
    default = load_task("imagefolder", data_root=str(folder_tree / "mine"))
    assert default.template == "a photo of a {}."


def test_imagefolder_errors(folder_tree):
    with pytest.raises(DataError) as e:
        load_task("imagefolder", data_root=str(folder_tree), path="mine", template="a photo")
    assert str(e.value) == (
        "Dataset 'imagefolder': template 'a photo' must contain '{}' exactly once (where the "
        "class name goes), e.g. 'a photo of a {}.'."
    )
    _img(folder_tree / "mine" / "test" / "dog" / "0.png", 7)
    with pytest.raises(DataError) as e:
        load_task("imagefolder", data_root=str(folder_tree), path="mine")
    assert str(e.value) == (
        f"Dataset 'imagefolder': {folder_tree / 'mine' / 'test'} has class folder(s) with no "
        f"train folder: dog. Valid classes: cat, red_fox."
    )
    with pytest.raises(DataError, match=r"^Dataset 'imagefolder': split folder not found: .*nowhere/train"):
        (folder_tree / "nowhere").mkdir()
        load_task("imagefolder", data_root=str(folder_tree), path="nowhere")


def test_csv(tmp_path):
    for i in range(4):
        _img(tmp_path / "img" / f"{i}.jpg", 50 * i)
    (tmp_path / "train.csv").write_text("path,label\nimg/0.jpg,zebra\nimg/1.jpg,apple\nimg/2.jpg,zebra\n")
    (tmp_path / "test.csv").write_text("path,label\nimg/3.jpg,apple\n")
    task = load_task("csv", data_root=str(tmp_path))
    assert task.classnames == ["apple", "zebra"] and task.pool.labels.tolist() == [1, 0, 1]
    (tmp_path / "classnames.txt").write_text("zebra\napple\n")
    assert load_task("csv", data_root=str(tmp_path)).pool.labels.tolist() == [0, 1, 0]
    (tmp_path / "test.csv").write_text("path,label\nimg/3.jpg,pear\n")
    with pytest.raises(DataError) as e:
        load_task("csv", data_root=str(tmp_path))
    assert str(e.value) == (
        "Dataset 'csv': test.csv uses label(s) 'pear' not in classnames.txt. Valid classes: zebra, apple."
    )
    (tmp_path / "test.csv").write_text("path,label\n../secret.jpg,apple\n")
    with pytest.raises(DataError, match=r"test.csv line 2: image path '../secret.jpg' contains '..'"):
        load_task("csv", data_root=str(tmp_path))
    (tmp_path / "test.csv").write_text("file,class\nimg/3.jpg,apple\n")
    with pytest.raises(DataError, match=r"needs a header with columns 'path' and 'label'; found file, class"):
        load_task("csv", data_root=str(tmp_path))


def test_data_fake_and_check_commands(tmp_path):
    from albench.cli.main import main

    r = CliRunner().invoke(main, ["data", "fake", "eurosat", "--root", str(tmp_path), "--image-size", "8"])
    assert r.exit_code == 0, r.output
    assert f"wrote {tmp_path / 'eurosat'}: 10 classes, train/val/test 20/10/10 images of 8px (small)" in r.output
    r = CliRunner().invoke(main, ["data", "check", "eurosat", "--data-root", str(tmp_path)])
    assert r.exit_code == 2 and "does not match CoOp's official EuroSAT split" in r.output
    r = CliRunner().invoke(
        main, ["data", "check", "eurosat", "--data-root", str(tmp_path), "--allow-custom-split", "--verify-images"]
    )
    assert r.exit_code == 0, r.output
    assert (
        "eurosat: 10 classes, pool (train) 20, val 10 (unused), test 10; template 'a centered satellite photo of {}.'"
    ) in r.output
    assert "0 corrupt image(s)" in r.output
    r = CliRunner().invoke(main, ["data", "fake", "mnist", "--root", str(tmp_path)])
    assert r.exit_code == 2 and "No fake generator for dataset 'mnist'. Valid: caltech101, dtd, eurosat" in r.output


def test_run_with_missing_tree_prints_layout_error(tmp_path):
    from albench.cli.main import main

    r = CliRunner().invoke(
        main,
        [
            "run",
            "--dataset",
            "dtd",
            "--data-root",
            str(tmp_path),
            "--strategy",
            "random",
            "--adapter",
            "coop",
            "--rounds",
            "1",
            "--results-dir",
            str(tmp_path / "res"),
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert r.exit_code == 2  # checked before any run starts
    assert f"Dataset 'dtd': dataset folder not found: {tmp_path / 'dtd'}" in r.output
    assert not (tmp_path / "res").exists()  # nothing written: no failure record for a tree that is not there
    assert "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md#dtd" in r.output


def test_dataset_options_reach_the_loader_and_the_config_only_when_set(tmp_path):
    from types import SimpleNamespace

    from albench.data.datasets.fake import generate
    from albench.engine.protocol import RunSpec, Workspace, config_hash, run_config

    generate("eurosat", tmp_path, image_size=8)
    bb = SimpleNamespace(
        identity="stub-backbone",  # run_config only reads the identity and the compute
        compute=SimpleNamespace(describe=lambda: {"device": "cpu", "precision": "fp32"}),
    )
    ws = Workspace(tmp_path / "cache", device="cpu", progress=False)
    spec = RunSpec("random", "coop", "eurosat", data_root=str(tmp_path), dataset_options={"allow_custom_split": True})
    task = ws.task(spec.dataset, spec.data_root, spec.dataset_options)
    cfg = run_config(spec, task, bb)
    assert cfg["dataset_options"] == {"allow_custom_split": True}
    plain = run_config(RunSpec("random", "coop", "eurosat", data_root=str(tmp_path)), task, bb)
    assert "dataset_options" not in plain  # empty options leave existing runs' config hashes unchanged
    assert config_hash(cfg) != config_hash(plain)
    with pytest.raises(DataError, match="does not match CoOp's official EuroSAT split"):
        ws.task("eurosat", str(tmp_path))
