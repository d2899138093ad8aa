"""CoOp-layout loaders on generated stand-in trees, their validation errors, and the image pipeline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from albench.data.datasets.coop import COOP_SPLITS, DATASETS_URL
from albench.data.datasets.fake import SMALL_PER_CLASS, generate
from albench.api.errors import DataError
from albench.data.tasks import load_task

ALL = sorted(COOP_SPLITS)
REQUIRED = ("caltech101", "dtd", "eurosat", "fgvc_aircraft", "oxford_flowers", "ucf101")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """One small fake tree per dataset (8 px images), shared by the module's tests."""
    root = tmp_path_factory.mktemp("coop-small")
    for name in ALL:
        generate(name, root, image_size=8, scale="small", workers=4)
    return root


@pytest.fixture()
def dtd_copy(small_root, tmp_path):
    """A private copy of the small DTD tree that a test may damage."""
    shutil.copytree(small_root / "dtd", tmp_path / "dtd")
    return tmp_path


# --- every loader on its fake tree ------------------------------------------------------------------------------

EXPECTED_NAMES = {  # (first classes in label order, a class name CoOp's rules produce)
    "caltech101": (["face", "leopard", "motorbike", "accordion", "airplane"], "yin yang"),
    "dtd": (["banded", "blotchy", "braided"], "zigzagged"),
    "eurosat": (["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road"], "Sea or Lake"),
    "fgvc_aircraft": (["707-320", "727-200", "737-200"], "Yak-42"),
    "oxford_flowers": (["pink primrose", "hard-leaved pocket orchid", "canterbury bells"], "blackberry lily"),
    "ucf101": (["Apply Eye Makeup", "Apply Lipstick", "Archery"], "Yo Yo"),
    "oxford_pets": (["abyssinian", "american bulldog", "american pit bull terrier"], "yorkshire terrier"),
    "stanford_cars": (["2000 AM General Hummer SUV", "2012 Acura RL Sedan"], "2012 Tesla Model S Sedan"),
    "food101": (["apple pie", "baby back ribs", "baklava"], "waffles"),
    "sun397": (["abbey", "airplane cabin", "airport terminal"], "outdoor church"),
    "imagenet": (["tench", "goldfish", "great white shark"], "toilet paper"),
}
TEMPLATES = {
    "caltech101": "a photo of a {}.",
    "dtd": "{} texture.",
    "eurosat": "a centered satellite photo of {}.",
    "fgvc_aircraft": "a photo of a {}, a type of aircraft.",
    "oxford_flowers": "a photo of a {}, a type of flower.",
    "ucf101": "a photo of a person doing {}.",
    "oxford_pets": "a photo of a {}, a type of pet.",
    "stanford_cars": "a photo of a {}.",
    "food101": "a photo of {}, a type of food.",
    "sun397": "a photo of a {}.",
    "imagenet": "a photo of a {}.",
}
CLASSES = {
    "caltech101": 100,
    "dtd": 47,
    "eurosat": 10,
    "fgvc_aircraft": 100,
    "oxford_flowers": 102,
    "ucf101": 101,
    "oxford_pets": 37,
    "stanford_cars": 196,
    "food101": 101,
    "sun397": 397,
    "imagenet": 1000,
}


@pytest.mark.parametrize("name", ALL)
def test_loader_on_small_fake_tree(small_root, name):
    task = load_task(name, data_root=str(small_root), allow_custom_split=True)
    c = CLASSES[name]
    assert task.name == name and task.num_classes == c == COOP_SPLITS[name].classes
    assert len(task.pool) == SMALL_PER_CLASS["train"] * c
    assert len(task.test) == SMALL_PER_CLASS["test"] * c
    if name == "imagenet":
        assert task.val is None  # CoOp: ImageNet's val folder is the test set
    else:
        assert len(task.val) == SMALL_PER_CLASS["val"] * c
        assert task.meta["val_used"] is False
    first, member = EXPECTED_NAMES[name]
    assert task.classnames[: len(first)] == first and member in task.classnames
    assert len(task.classnames) == c  # (CLIP's ImageNet names repeat two: 'crane', 'maillot')
    assert task.template == TEMPLATES[name] == COOP_SPLITS[name].template
    assert task.prompts()[0] == TEMPLATES[name].format(first[0])
    for split in (task.pool, task.test):
        assert split.labels.min() == 0 and split.labels.max() == c - 1
        assert np.array_equal(np.bincount(split.labels, minlength=c), np.full(c, len(split) // c))
    assert task.meta["official_split"] is False and task.meta["skipped_images"] == []
    img = task.pool.source.load(np.array([0, len(task.pool) - 1]), 16)
    assert img.shape == (2, 16, 16, 3) and img.dtype == np.uint8


def test_coop_class_name_rules(small_root):
    cal = load_task("caltech101", data_root=str(small_root), allow_custom_split=True)
    raw = cal.meta["coop_classnames"]
    assert {"face", "leopard", "motorbike", "airplane"} <= set(raw)
    assert not {"BACKGROUND_Google", "Faces_easy", "Faces", "airplanes", "Leopards", "Motorbikes"} & set(raw)
    ucf = load_task("ucf101", data_root=str(small_root), allow_custom_split=True)
    assert ucf.meta["coop_classnames"][0] == "Apply_Eye_Makeup" and ucf.classnames[0] == "Apply Eye Makeup"
    assert (small_root / "ucf101/UCF-101-midframes/Apply_Eye_Makeup").is_dir()
    sun = load_task("sun397", data_root=str(small_root), allow_custom_split=True)
    assert "outdoor apartment_building" in sun.meta["coop_classnames"]
    pets = load_task("oxford_pets", data_root=str(small_root), allow_custom_split=True)
    assert pets.meta["coop_classnames"][:2] == ["abyssinian", "american_bulldog"]
    flowers = json.loads((small_root / "oxford_flowers/cat_to_name.json").read_text())
    fl = load_task("oxford_flowers", data_root=str(small_root), allow_custom_split=True)
    assert fl.classnames == [flowers[str(i + 1)] for i in range(102)]


def test_small_tree_needs_allow_custom_split(small_root):
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(small_root))
    split = small_root / "dtd" / "split_zhou_DescribableTextures.json"
    assert str(e.value) == (
        f"Dataset 'dtd': the split does not match CoOp's official DescribableTextures split: expected 47 classes and "
        f"train/val/test 2,820/1,128/1,692 images, found 47 classes and 94/47/47 in {split}. Use the official "
        f"split file ({DATASETS_URL}#dtd), or pass --allow-custom-split to accept this split (results are then not "
        f"comparable to published numbers)."
    )


@pytest.mark.slow
def test_full_size_dtd_passes_official_validation(tmp_path):
    info = generate("dtd", tmp_path, image_size=4, scale="full", workers=4)
    assert (info["train"], info["val"], info["test"]) == (2820, 1128, 1692)
    task = load_task("dtd", data_root=str(tmp_path))
    assert (len(task.pool), len(task.val), len(task.test), task.num_classes) == (2820, 1128, 1692, 47)
    assert task.meta["official_split"] is True


# --- validation errors --------------------------------------------------------------------------------------------


def test_missing_data_root(monkeypatch):
    monkeypatch.delenv("ALBENCH_DATA", raising=False)
    with pytest.raises(DataError) as e:
        load_task("eurosat")
    msg = str(e.value)
    assert msg.startswith(
        "Dataset 'eurosat': no data root given. Pass --data-root DIR (or set $ALBENCH_DATA) to the "
        "folder that holds eurosat/.\nExpected layout under the data root:\n  eurosat/\n"
        "    2750/<class>/<class>_1.jpg"
    )
    assert msg.endswith(f"Get the files as described in CoOp's DATASETS.md: {DATASETS_URL}#eurosat")


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(tmp_path))
    assert str(e.value) == (
        f"Dataset 'dtd': dataset folder not found: {tmp_path / 'dtd'}\n"
        f"Expected layout under the data root ({tmp_path}):\n"
        "  dtd/\n    images/<class>/<class>_0001.jpg   (banded/, blotchy/, ...)\n"
        "    split_zhou_DescribableTextures.json\n"
        f"Get the files as described in CoOp's DATASETS.md: {DATASETS_URL}#dtd"
    )
    with pytest.raises(DataError, match="the data root .*nope does not exist or is not a folder"):
        load_task("dtd", data_root=str(tmp_path / "nope"))


def test_missing_split_file(dtd_copy):
    split = dtd_copy / "dtd" / "split_zhou_DescribableTextures.json"
    split.unlink()
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert str(e.value).startswith(f"Dataset 'dtd': split file not found: {split}\nExpected layout")
    assert not split.exists()  # never replaced by a generated split


def test_missing_aircraft_split_and_imagenet_files(small_root, tmp_path):
    shutil.copytree(small_root / "fgvc_aircraft", tmp_path / "fgvc_aircraft")
    (tmp_path / "fgvc_aircraft" / "images_variant_val.txt").unlink()
    with pytest.raises(DataError, match=r"^Dataset 'fgvc_aircraft': split file not found: .*images_variant_val\.txt"):
        load_task("fgvc_aircraft", data_root=str(tmp_path), allow_custom_split=True)
    (tmp_path / "imagenet").mkdir()
    with pytest.raises(DataError, match=r"^Dataset 'imagenet': class-name file not found: .*classnames\.txt"):
        load_task("imagenet", data_root=str(tmp_path))


def test_malformed_json(dtd_copy):
    split = dtd_copy / "dtd" / "split_zhou_DescribableTextures.json"
    split.write_text('{"train": [["banded/banded_0001.jpg", 0, "banded"],]}')
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert str(e.value).startswith(
        f"Dataset 'dtd': split file {split} is not valid JSON (line 1, column 52: "
        f"Expecting value). Download the official file again."
    )
    split.write_text('{"train": [], "test": []}')
    with pytest.raises(DataError, match=r"has no list for key\(s\) val; expected"):
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    split.write_text('{"train": [["a.jpg", "0", "banded"]], "val": [], "test": []}')
    with pytest.raises(
        DataError,
        match=re_escape(
            "split_zhou_DescribableTextures.json train[0] is ['a.jpg', '0', "
            "'banded']; expected [relative_path, integer label, classname]."
        ),
    ):
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def _edit_split(root: Path, fn) -> None:
    path = root / "dtd" / "split_zhou_DescribableTextures.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_missing_image(dtd_copy):
    gone = dtd_copy / "dtd" / "images" / "banded" / "banded_0001.jpg"
    gone.unlink()
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert str(e.value).startswith(
        f"Dataset 'dtd': 1 of 94 image(s) listed in the split are missing: {gone}.\nExpected layout:\n  dtd/"
    )


@pytest.mark.parametrize(
    "bad, why",
    [
        ("../outside.jpg", "contains '..' and would leave the dataset folder"),
        ("banded/../../x.jpg", "contains '..' and would leave the dataset folder"),
        ("/etc/passwd", "is absolute"),
        ("C:\\x.jpg", "is absolute"),
    ],
)
def test_path_escaping_root(dtd_copy, bad, why):
    _edit_split(dtd_copy, lambda d: d["train"].__setitem__(0, [bad, 0, "banded"]))
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert str(e.value).startswith(
        f"Dataset 'dtd': split_zhou_DescribableTextures.json train[0]: image path {bad!r} {why}"
    )


def test_class_without_training_images(dtd_copy):
    _edit_split(dtd_copy, lambda d: d.__setitem__("train", [e for e in d["train"] if e[1] != 3]))
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert "Dataset 'dtd': 1 class(es) have no training images in " in str(e.value)
    assert str(e.value).endswith(": bubbly. Every class needs at least one image in the train split (the pool).")


def test_inconsistent_class_names_and_label_gaps(dtd_copy):
    _edit_split(dtd_copy, lambda d: d["test"][0].__setitem__(2, "stripy"))
    with pytest.raises(
        DataError,
        match=r"test\[0\] gives label 0 the class name 'stripy', but earlier entries call "
        r"it 'banded'",
    ):
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)


def test_unknown_option(small_root):
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(small_root), allow_custom_splits=True)
    assert str(e.value) == (
        "Unknown option(s) 'allow_custom_splits' for dataset 'dtd'. "
        "Valid options: allow_custom_split, allow_overlap, follow_symlinks, skip_corrupt."
    )
    with pytest.raises(DataError, match=r"Option skip_corrupt='yes' for dataset 'dtd' must be true or false"):
        load_task("dtd", data_root=str(small_root), skip_corrupt="yes")


def test_corrupt_image_stops_with_file_named_or_is_skipped(dtd_copy):
    bad = dtd_copy / "dtd" / "images" / "blotchy" / "blotchy_0003.jpg"
    bad.write_bytes(b"not a jpeg at all")
    task = load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)  # stat-level checks pass
    i = task.pool.source.relpaths.index("images/blotchy/blotchy_0003.jpg")
    with pytest.raises(DataError) as e:
        task.pool.source.load(np.arange(len(task.pool)), 8)
    assert str(e.value).startswith(f"Cannot decode image {bad}: UnidentifiedImageError")
    assert "pass --skip-corrupt-images" in str(e.value)
    assert task.pool.source.load(np.array([i - 1]), 8).shape == (1, 8, 8, 3)

    skipped = load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True, skip_corrupt=True)
    assert len(skipped.pool) == len(task.pool) - 1 and len(skipped.test) == len(task.test)
    (rec,) = skipped.meta["skipped_images"]
    assert rec["split"] == "train" and rec["path"] == "images/blotchy/blotchy_0003.jpg"
    assert rec["error"].startswith("UnidentifiedImageError")
    assert skipped.pool.source.load(np.arange(len(skipped.pool)), 8).shape == (len(skipped.pool), 8, 8, 3)
    assert skipped.fingerprint() != task.fingerprint()


def test_empty_image_file_is_reported_at_load(dtd_copy):
    bad = dtd_copy / "dtd" / "images" / "banded" / "banded_0001.jpg"
    bad.write_bytes(b"")
    with pytest.raises(DataError) as e:
        load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True)
    assert str(e.value).startswith(f"Dataset 'dtd': 1 image file(s) are empty (0 bytes), so corrupt: {bad}.")
    task = load_task("dtd", data_root=str(dtd_copy), allow_custom_split=True, skip_corrupt=True)
    assert [r["path"] for r in task.meta["skipped_images"]] == ["images/banded/banded_0001.jpg"]


# --- image pipeline ------------------------------------------------------------------------------------------------


def test_preprocess_matches_torchvision_clip_eval_transform(tmp_path):
    from PIL import Image
    from torchvision import transforms as T

    from albench.data.datasets.source import FileSource, preprocess

    rng = np.random.default_rng(0)
    for w, h in [(97, 61), (40, 130), (50, 50), (300, 224)]:
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        ref = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(32)])(img)
        assert np.array_equal(preprocess(img, 32), np.asarray(ref)), (w, h)
    Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8), mode="L").save(tmp_path / "gray.png")
    src = FileSource(tmp_path, ["gray.png"], [os.path.getsize(tmp_path / "gray.png")])
    assert src.load(np.array([0]), 12).shape == (1, 12, 12, 3)  # converted to RGB


def test_parallel_decoding_matches_serial_and_fingerprint_is_paths_and_sizes(small_root, monkeypatch, tmp_path):
    task = load_task("sun397", data_root=str(small_root), allow_custom_split=True)
    idx = np.arange(len(task.pool))[::-3]
    monkeypatch.setenv("ALBENCH_DECODE_WORKERS", "1")
    serial = task.pool.source.load(idx, 12)
    monkeypatch.setenv("ALBENCH_DECODE_WORKERS", "4")
    assert np.array_equal(task.pool.source.load(idx, 12, progress=True), serial)
    monkeypatch.setenv("ALBENCH_DECODE_WORKERS", "zero")
    with pytest.raises(DataError, match="ALBENCH_DECODE_WORKERS='zero' is not an integer"):
        task.pool.source.load(idx, 12)
    monkeypatch.delenv("ALBENCH_DECODE_WORKERS")
    # the fingerprint does not depend on where the data root is mounted, but on paths and sizes
    shutil.copytree(small_root / "dtd", tmp_path / "dtd")
    a = load_task("dtd", data_root=str(small_root), allow_custom_split=True)
    b = load_task("dtd", data_root=str(tmp_path), allow_custom_split=True)
    assert a.fingerprint() == b.fingerprint()
    with open(tmp_path / "dtd" / "images" / "banded" / "banded_0001.jpg", "ab") as f:
        f.write(b"\0")
    assert load_task("dtd", data_root=str(tmp_path), allow_custom_split=True).fingerprint() != a.fingerprint()
