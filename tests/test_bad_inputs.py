"""The bad-input catalogue (issue 7; README "Bad input catalogue").

Every case runs ``albench run`` (or ``table``) in-process and checks: the exact message, a non-zero exit, no
traceback, and the results directory. Input errors found before any run ("pre") exit 2 and leave the results
directory byte-for-byte unchanged. Errors that belong to one run ("run": its data, weights, cache, plugin output
or training) exit 1 after the grid finished; they add one failure record under results/failed/ (error +
traceback, for `albench status`) and never a run record.
"""

import json
import shutil
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from albench.cli.main import main
from albench.api.plugins import ADAPTERS, STRATEGIES
from albench.api.registry import PluginInfo
from albench.engine.records import SCHEMA
from albench.api.strategy import Strategy

BASE = [
    "--seeds",
    "1",
    "--rounds",
    "2",
    "--adapter-opt",
    "coop:epochs=2",
    "--adapter-opt",
    "coop:min_steps=0",
    "--device",
    "cpu",
    "--no-progress",
]


def a(*extra, strategy="random", adapter="coop", dataset="digits"):
    return ["run", "--strategy", strategy, "--adapter", adapter, "--dataset", dataset, *BASE, *map(str, extra)]


# --- strategies that break the selection contract (the harness checks every strategy's output) ---
class Dup(Strategy):
    def select(self, ctx):
        u = ctx.unlabeled
        return np.concatenate([u[:1], u[: ctx.budget - 1]])


class Relabel(Strategy):
    def select(self, ctx):
        return (
            np.concatenate([ctx.labeled[:1], ctx.unlabeled[: ctx.budget - 1]])
            if ctx.labeled.size
            else ctx.unlabeled[: ctx.budget]
        )


class OutOfRange(Strategy):
    def select(self, ctx):
        return np.concatenate([ctx.unlabeled[: ctx.budget - 1], [ctx.pool_size + 7]])


class TooMany(Strategy):
    def select(self, ctx):
        return ctx.unlabeled[: ctx.budget + 1]


@pytest.fixture(autouse=True)
def contract_plugins(tmp_path, monkeypatch):
    for name, cls in (("dup", Dup), ("relabel", Relabel), ("outofrange", OutOfRange), ("toomany", TooMany)):
        STRATEGIES.register(name, cls)
    mod = tmp_path / "mods" / "albench_broken_plugin.py"
    mod.parent.mkdir()
    mod.write_text("raise ImportError('needs the package frobnicate, which is not installed')\n")
    monkeypatch.syspath_prepend(str(mod.parent))
    target = "albench_broken_plugin:Broken"
    STRATEGIES._entries["broken"] = (
        EntryPoint("broken", target, "albench.strategies"),
        PluginInfo("broken", target, "albench-broken", "0.3"),
    )
    yield
    for name in ("dup", "relabel", "outofrange", "toomany", "broken"):
        STRATEGIES.unregister(name)


def eurosat(tmp: Path, edit=None) -> Path:
    """A fake CoOp-layout EuroSAT tree (tiny images), optionally edited."""
    from albench.data.datasets.fake import generate

    root = tmp / "data"
    if not (root / "eurosat").exists():
        generate("eurosat", root, image_size=8)
    if edit:
        edit(root / "eurosat")
    return root


def es(tmp, edit=None, strategy="random"):
    return a(
        "--data-root",
        eurosat(tmp, edit),
        "--allow-custom-split",
        "--round-budget",
        "1",
        "--backbone",
        "toy-clip",
        dataset="eurosat",
        strategy=strategy,
    )


def split_edit(fn):
    def edit(ds):
        p = ds / "split_zhou_EuroSAT.json"
        data = json.loads(p.read_text())
        fn(data)
        p.write_text(json.dumps(data))

    return edit


def _bad_json(ds):
    (ds / "split_zhou_EuroSAT.json").write_text('{"train": [["a.jpg", 0, "x"],]')


def _no_train_for_class(data):
    data["train"] = [e for e in data["train"] if e[1] != 3]


def _corrupt_image(ds):
    (ds / "2750" / "AnnualCrop" / "AnnualCrop_1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


def _weights(tmp, kind):
    import torch
    from safetensors.torch import save_file

    from albench.clip.backbone import read_state_dict
    from albench.data.toy.model import WEIGHTS_FILE

    p = tmp / f"{kind}.safetensors"
    if kind == "wrong-arch":
        save_file({"visual.proj": torch.zeros(3, 3), "token_embedding.weight": torch.zeros(5, 4)}, str(p))
    else:
        sd = read_state_dict(WEIGHTS_FILE)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(p))
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _blocked(tmp):
    (tmp / "blocker").write_text("a regular file where a directory is expected\n")
    return tmp / "blocker" / "sub"


def names(reg):
    return ", ".join(reg.names())


RAND = "digits random__coop__seed1"  # the failing run, as the summary names it
ES = "eurosat random__coop__seed1"
# id -> (args(tmp), kind, expected message); "run" cases give (run name, error type, message).
CASES = {
    "unknown-strategy": (
        lambda t: a(strategy="randm"),
        "pre",
        "Unknown strategy 'randm'. Did you mean: random? Available: {strategies}",
    ),
    "unknown-adapter": (
        lambda t: a(adapter="cop"),
        "pre",
        "Unknown adapter 'cop'. Did you mean: coop? Available: {adapters}",
    ),
    "unknown-dataset": (
        lambda t: a(dataset="digitz"),
        "pre",
        "Unknown dataset 'digitz'. Did you mean: digits? Available: {datasets}",
    ),
    "unknown-preset": (
        lambda t: ["run", "--preset", "tabel1"],
        "pre",
        "Unknown preset 'tabel1'. Did you mean: table1, table4, table3? Available: ablation_dualprompt, table1, table2, table3, table4",
    ),
    "unknown-launcher": (
        lambda t: [*a(), "--launcher", "slurmm"],
        "pre",
        "Unknown launcher 'slurmm'. Did you mean: slurm? Available: local, slurm",
    ),
    "empty-strategy-list": (
        lambda t: a(strategy="random,"),
        "pre",
        "Empty item in list 'random,'; use comma-separated names like 'random,entropy'.",
    ),
    "empty-seed-list": (
        lambda t: [*a(), "--seeds", ""],
        "pre",
        "Empty item in list ''; use comma-separated names like 'random,entropy'.",
    ),
    "budget-zero": (lambda t: [*a(), "--budget-pct", "0"], "pre", "--budget-pct must be in (0, 100], got 0."),
    "budget-over-100": (lambda t: [*a(), "--budget-pct", "150"], "pre", "--budget-pct must be in (0, 100], got 150."),
    "round-budget-zero": (
        lambda t: [*a(), "--round-budget", "0"],
        "pre",
        "--round-budget must be a positive integer, got 0.",
    ),
    "budget-not-whole-rounds": (
        lambda t: [*a(), "--budget", "1.5"],
        "pre",
        "Budget 1.5 % is not a whole number of rounds of 1 %.",
    ),
    "budget-larger-than-pool": (
        lambda t: [*a(), "--round-budget", "1000"],
        "pre",
        "2 rounds of 1000 labels need 2000 samples, but the pool of 'digits' has only 1200.",
    ),
    "rounds-zero": (lambda t: [*a(), "--rounds", "0"], "pre", "--rounds must be a positive integer, got 0."),
    "seed-not-integer": (lambda t: [*a(), "--seeds", "1,x"], "pre", "Seed 'x' is not an integer (got --seeds '1,x')."),
    "workers-zero": (lambda t: [*a(), "--workers", "0"], "pre", "--workers must be at least 1, got 0."),
    "unknown-adapter-option": (
        lambda t: [*a(), "--adapter-opt", "epoch=3"],
        "pre",
        "Unknown option for adapter 'coop' 'epoch'. Did you mean: epochs? Available: {coop_options}",
    ),
    "option-not-key-value": (
        lambda t: [*a(), "--adapter-opt", "epochs"],
        "pre",
        "Option 'epochs' must look like key=value.",
    ),
    "data-root-missing": (
        lambda t: a("--data-root", t / "nowhere", dataset="eurosat"),
        "pre",
        "Dataset 'eurosat': the data root {tmp}/nowhere does not exist or is not a folder.",
    ),
    "split-file-missing": (
        lambda t: es(t, lambda ds: (ds / "split_zhou_EuroSAT.json").unlink()),
        "pre",
        "Dataset 'eurosat': split file not found: {tmp}/data/eurosat/split_zhou_EuroSAT.json",
    ),
    "split-file-malformed": (
        lambda t: es(t, _bad_json),
        "pre",
        "prefix:Dataset 'eurosat': split file {tmp}/data/eurosat/split_zhou_EuroSAT.json is not valid JSON (line 1, column 30: Expecting value).",
    ),
    "split-names-missing-image": (
        lambda t: es(t, split_edit(lambda d: d["train"].append(["AnnualCrop/nope.jpg", 0, "Annual Crop Land"]))),
        "pre",
        "prefix:Dataset 'eurosat': 1 of 21 image(s) listed in the split are missing: {tmp}/data/eurosat/2750/AnnualCrop/nope.jpg.",
    ),
    "split-path-escapes-root": (
        lambda t: es(t, split_edit(lambda d: d["test"].append(["../../etc/passwd", 0, "Annual Crop Land"]))),
        "pre",
        "Dataset 'eurosat': split_zhou_EuroSAT.json test[10]: image path '../../etc/passwd' contains '..' and would leave the dataset folder; split files must use paths inside it.",
    ),
    "class-without-training-images": (
        lambda t: es(t, split_edit(_no_train_for_class)),
        "pre",
        "prefix:Dataset 'eurosat': 1 class(es) have no training images in ",
    ),
    "corrupt-image": (
        lambda t: es(t, _corrupt_image),
        "run",
        (ES, "DataError", "Cannot decode image {tmp}/data/eurosat/2750/AnnualCrop/AnnualCrop_1.jpg"),
    ),
    # weights and the cache directory are checked by the preflight, once, before any run
    "weights-missing": (
        lambda t: [*a(), "--pretrained", t / "none.safetensors"],
        "pre",
        "Weights file {tmp}/none.safetensors does not exist. For the toy CLIP use --pretrained albench-toy (shipped), a file saved from it, or --pretrained random.",
    ),
    "weights-wrong-architecture": (
        lambda t: [*a(), "--pretrained", _weights(t, "wrong-arch")],
        "pre",
        "prefix:Weights file {tmp}/wrong-arch.safetensors does not match architecture 'toy-clip': 2 shape mismatches (e.g. token_embedding.weight: file (5, 4) vs toy-clip (",
    ),
    "weights-truncated": (
        lambda t: [*a(), "--pretrained", _weights(t, "truncated")],
        "pre",
        "prefix:Could not read weights file {tmp}/truncated.safetensors",
    ),
    "pretrained-tag-unknown": (
        lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", "openaii"],
        "pre",
        "prefix:Unknown pretrained tag for 'ViT-B-32' 'openaii'. Did you mean: openai?",
    ),
    "cache-dir-not-writable": (
        lambda t: [*a(), "--cache-dir", _blocked(t)],
        "pre",
        "Cannot write the feature cache to {tmp}/blocker/sub: {tmp}/blocker is not a directory. Pass --cache-dir or set ALBENCH_CACHE to a writable directory.",
    ),
    "results-dir-not-writable": (
        lambda t: [*a(), "--results-dir", _blocked(t)],
        "pre",
        "Cannot write results to {tmp}/blocker/sub: {tmp}/blocker is not a directory. Pass --results-dir with a writable directory.",
    ),
    "plugin-import-raises": (
        lambda t: a(strategy="broken"),
        "pre",
        "strategy 'broken' from distribution albench-broken 0.3 failed to import (albench_broken_plugin:Broken): ImportError: needs the package frobnicate, which is not installed",
    ),
    "plugin-duplicate-indices": (
        lambda t: a(strategy="dup"),
        "run",
        ("digits dup__coop__seed1", "ContractError", "strategy 'dup' returned duplicate indices [0]."),
    ),
    "plugin-labeled-indices": (
        lambda t: a(strategy="relabel"),
        "run",
        ("digits relabel__coop__seed1", "ContractError", "strategy 'relabel' returned already-labelled indices [0]."),
    ),
    "plugin-out-of-range": (
        lambda t: a(strategy="outofrange"),
        "run",
        ("digits outofrange__coop__seed1", "ContractError", "strategy 'outofrange' returned out-of-range indices"),
    ),
    "plugin-wrong-count": (
        lambda t: a(strategy="toomany"),
        "run",
        (
            "digits toomany__coop__seed1",
            "ContractError",
            "strategy 'toomany' returned 13 indices in round 1; the budget is 12",
        ),
    ),
    "nan-loss": (
        lambda t: a("--adapter-opt", "coop:lr=1e30", adapter="coop,zeroshot"),
        "run",
        (RAND, "TrainingError", "coop round 1: training loss became nan at step 2 of 2"),
    ),
}

# --- real path: the one preflight (albench.engine.preflight) -----------------------------------------------------
# Device, backbone choice, weights and activation, imagefolder/csv datasets: each is one message before any run.


def _imagefolder(tmp: Path, splits=("train", "test")) -> Path:
    """A two-class imagefolder tree of tiny PNGs with only ``splits``."""
    from PIL import Image

    root = tmp / "ifolder"
    for s in splits:
        for c in ("cat", "dog"):
            (root / s / c).mkdir(parents=True, exist_ok=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (40 * i, 80, 120)).save(root / s / c / f"{i}.png")
    return root


def _any_file(tmp: Path) -> Path:
    p = tmp / "open_clip_model.safetensors"
    p.write_bytes(b"not read: the activation is decided before any tensor is")
    return p


REAL_CASES = {
    "device-gpu": (
        lambda t: [*a(), "--device", "gpu"],
        "pre",
        "Unknown --device 'gpu'. Valid: auto, cpu, cuda, cuda:N.",
    ),
    "device-cuda-without-gpu": (
        lambda t: [*a(), "--device", "cuda"],
        "pre",
        "prefix:--device cuda: no CUDA GPU is visible on this machine",
    ),
    "real-data-with-default-toy-backbone": (
        lambda t: a("--data-root", eurosat(t), dataset="eurosat"),
        "pre",
        "Dataset(s) eurosat hold real images, but no backbone was chosen and the default is the toy CLIP (trained on procedural images only). Pass --backbone and --pretrained, e.g. --backbone ViT-B-16 --pretrained openai (or --pretrained /path/to/open_clip_model.safetensors), or --backbone toy-clip to use the toy CLIP on purpose.",
    ),
    "imagefolder-without-folder": (
        lambda t: a("--backbone", "toy-clip", dataset="imagefolder"),
        "pre",
        "Dataset 'imagefolder': no folder given. Pass --data-root DIR or --dataset-opt path=DIR.",
    ),
    "imagefolder-without-test-split": (
        lambda t: a("--backbone", "toy-clip", "--data-root", _imagefolder(t, ("train",)), dataset="imagefolder"),
        "pre",
        "Dataset 'imagefolder': split folder not found: {tmp}/ifolder/test",
    ),
    "template-without-braces": (
        lambda t: a(
            "--backbone",
            "toy-clip",
            "--data-root",
            _imagefolder(t),
            "--dataset-opt",
            "template=a photo.",
            dataset="imagefolder",
        ),
        "pre",
        "Dataset 'imagefolder': template 'a photo.' must contain '{{}}' exactly once (where the class name goes), e.g. 'a photo of a {{}}.'.",
    ),
    "csv-without-test-file": (
        lambda t: a("--backbone", "toy-clip", "--data-root", t, dataset="csv"),
        "pre",
        "Dataset 'csv': split file not found: {tmp}/train.csv",
    ),
    "weights-file-activation-undecided": (
        lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", _any_file(t)],
        "pre",
        "prefix:Cannot tell which activation the weights file {tmp}/open_clip_model.safetensors needs: ViT-B-32 has checkpoints trained with QuickGELU (openai, laion400m_e31, ",
    ),
    "quick-gelu-contradicts-tag": (
        lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", "openai", "--no-quick-gelu"],
        "pre",
        "--no-quick-gelu contradicts the weights: open_clip's pretrained config of ViT-B-32 / openai says QuickGELU. Drop --no-quick-gelu.",
    ),
    "pretrained-tag-with-file-unknown-tag": (
        lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", f"opnai={_any_file(t)}"],
        "pre",
        "prefix:Unknown pretrained tag for 'ViT-B-32' (in --pretrained TAG=FILE) 'opnai'. Did you mean: openai?",
    ),
}
CASES.update(REAL_CASES)


# --- validation before any run: option schemas, presets, dataset integrity, run folders, CLI values --------------
# Every case here fails in the preflight (or while the grid is built): exit 2, one message per problem, results
# directory byte-identical.


def co(*opts, adapter="coop", strategy="random"):
    """The demo grid with extra --adapter-opt / --strategy-opt values ("s:" prefix for a strategy option)."""
    extra = []
    for o in opts:
        extra += ["--strategy-opt", o[2:]] if o.startswith("s:") else ["--adapter-opt", o]
    return a(*extra, adapter=adapter, strategy=strategy)


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 0), (0, 250, 250), (250, 0, 250), (9, 9, 9), (99, 9, 9)]


def _images(root: Path, names) -> None:
    from PIL import Image

    for i, n in enumerate(names):
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), COLOURS[i % len(COLOURS)]).save(root / n)


def csvds(t: Path, train: str, test: str, images=("a.png", "b.png", "c.png", "d.png"), edit=None, classnames=None):
    """A csv dataset under t/csvd (train.csv / test.csv given as text) and the run args for it."""
    root = t / "csvd"
    root.mkdir(exist_ok=True)
    _images(root, images)
    (root / "train.csv").write_text(train)
    (root / "test.csv").write_text(test)
    if classnames is not None:
        (root / "classnames.txt").write_text(classnames)
    if edit:
        edit(root)
    return a("--backbone", "toy-clip", "--data-root", root, "--round-budget", "1", "--rounds", "1", dataset="csv")


TRAIN = "path,label\na.png,cat\nb.png,dog\n"
TEST = "path,label\nc.png,cat\nd.png,dog\n"


def ifolder(t: Path, train=("cat", "dog"), test=("cat", "dog"), test_images=True):
    root = t / "ifd"
    n = 0
    for split, classes in (("train", train), ("test", test)):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            if split == "train" or test_images:
                from PIL import Image

                Image.new("RGB", (8, 8), COLOURS[n % len(COLOURS)]).save(root / split / c / "0.png")
                n += 1
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    return a(
        "--backbone", "toy-clip", "--data-root", root, "--round-budget", "1", "--rounds", "1", dataset="imagefolder"
    )


def preset(t: Path, text: str):
    p = t / "mine.toml"
    p.write_text(text)
    return ["run", "--preset", str(p), "--device", "cpu", "--no-progress"]


GOOD_PRESET = (
    'title = "Mine"\nadapter = "coop"\ndatasets = ["digits"]\nseeds = [1]\nrounds = 2\n\n'
    '[[columns]]\nlabel = "Random"\nstrategy = "random"\n'
)
PF = "Preset file {tmp}/mine.toml"


def _in_results(name: str, kind: str = "file"):
    """Make results/<name> a regular file where a folder is expected (before the snapshot)."""

    def make(t: Path):
        p = t / "results" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("not a folder\n")
        return t

    return make


def _unsafe_plugin(t):
    STRATEGIES.register("../../escaped", Dup)
    return a(strategy="../../escaped")


def _toy_context_limit() -> str:
    """The largest n_ctx CoOp fits on digits with the toy CLIP (context 32), computed like the preflight."""
    from albench.data.toy.tasks import build_digits
    from albench.engine.integrity import n_tokens

    return str(32 - max(n_tokens(f"{c}.") for c in build_digits().classnames) - 2)


def _copy(src, dst):
    return lambda root: shutil.copy(root / src, root / dst)


def _link_out(root: Path):
    outside = root.parent / "outside.png"
    shutil.copy(root / "b.png", outside)
    (root / "link.png").symlink_to(outside)


INT_1000 = "an integer in 1..1000 (default 20)."
LR = "a finite number > 0 (default 0.01)."
VALID_CASES = {
    # plugin option values against each plugin's declared schema
    "option-bool-for-int": (
        lambda t: co("coop:epochs=true"),
        "pre",
        f"adapter 'coop': option epochs=True is not valid; expected {INT_1000}",
    ),
    "option-runs-for-days": (
        lambda t: co("coop:epochs=1e9"),
        "pre",
        f"adapter 'coop': option epochs=1000000000 is not valid; expected {INT_1000}",
    ),
    "option-negative": (
        lambda t: co("coop:epochs=-1"),
        "pre",
        f"adapter 'coop': option epochs=-1 is not valid; expected {INT_1000}",
    ),
    "option-fraction-for-int": (
        lambda t: co("coop:epochs=2.5"),
        "pre",
        f"adapter 'coop': option epochs=2.5 is not valid; expected {INT_1000}",
    ),
    "option-nan": (lambda t: co("coop:lr=nan"), "pre", f"adapter 'coop': option lr=nan is not valid; expected {LR}"),
    "option-inf": (lambda t: co("coop:lr=inf"), "pre", f"adapter 'coop': option lr=inf is not valid; expected {LR}"),
    "option-zero-lr": (lambda t: co("coop:lr=0"), "pre", f"adapter 'coop': option lr=0.0 is not valid; expected {LR}"),
    "option-text-for-number": (
        lambda t: co("coop:lr=fast"),
        "pre",
        f"adapter 'coop': option lr='fast' is not valid; expected {LR}",
    ),
    "option-choice-typo": (
        lambda t: co("coop:class_token_position=ends"),
        "pre",
        "adapter 'coop': option class_token_position='ends' is not valid; expected one of end, middle, front (default 'end').",
    ),
    "option-int-for-bool": (
        lambda t: co("coop:csc=1"),
        "pre",
        "adapter 'coop': option csc=1 is not valid; expected true or false (default False).",
    ),
    "option-over-schema-bound": (
        lambda t: co("coop:n_ctx=100"),
        "pre",
        "adapter 'coop': option n_ctx=100 is not valid; expected an integer in 0..72 (default 16).",
    ),
    "option-beyond-text-context": (
        lambda t: co("coop:n_ctx=40"),
        "pre",
        "prefix:adapter 'coop': n_ctx=40 context tokens plus the longest class name of 'digits' (",
    ),
    "option-batch-size-zero": (
        lambda t: co("coop:batch_size=0"),
        "pre",
        "adapter 'coop': option batch_size=0 is not valid; expected an integer in 1..65536 (default 16).",
    ),
    "option-aug-views-negative": (
        lambda t: co("coop:aug_views=-1"),
        "pre",
        "adapter 'coop': option aug_views=-1 is not valid; expected an integer in 0..64 (default 0).",
    ),
    "option-empty-name": (
        lambda t: co("=3"),
        "pre",
        "Option '=3' has no name before '='; use key=value (or name:key=value).",
    ),
    "strategy-option-unknown": (
        lambda t: co("s:k=3"),
        "pre",
        "Unknown option for strategy 'random' 'k'. Available: (none)",
    ),
    "strategy-option-out-of-range": (
        lambda t: co("s:cec:k=0", strategy="cec"),
        "pre",
        "strategy 'cec': option k=0 is not valid; expected an integer in 1..10000 (default 10).",
    ),
    "strategy-option-choice": (
        lambda t: co("s:cec:calibration=platt", strategy="cec"),
        "pre",
        "strategy 'cec': option calibration='platt' is not valid; expected one of class-mean, class-rank, none (default 'class-mean').",
    ),
    "strategy-option-probability": (
        lambda t: co("s:gcnal:dropout=1.0", strategy="gcnal"),
        "pre",
        "strategy 'gcnal': option dropout=1.0 is not valid; expected a finite number in [0, 1) (default 0.3).",
    ),
    "strategy-option-runs-for-days": (
        lambda t: co("s:gcnal:steps=1e9", strategy="gcnal"),
        "pre",
        "strategy 'gcnal': option steps=1000000000 is not valid; expected an integer in 1..100000 (default 200).",
    ),
    "strategy-option-fraction-range": (
        lambda t: co("s:alfamix:alpha_cap=2", strategy="alfamix"),
        "pre",
        "strategy 'alfamix': option alpha_cap=2.0 is not valid; expected a finite number in (0, 1] (default 0.2).",
    ),
    "strategy-option-negative-radius": (
        lambda t: co("s:probcover:delta=-1", strategy="probcover"),
        "pre",
        "strategy 'probcover': option delta=-1.0 is not valid; expected a finite number > 0 (default 0.6).",
    ),
    "strategy-option-zero-neighbours": (
        lambda t: co("s:typiclust:k_nn=0", strategy="typiclust"),
        "pre",
        "strategy 'typiclust': option k_nn=0 is not valid; expected an integer in 1..10000 (default 20).",
    ),
    "adapter-option-crop-scale": (
        lambda t: co("vpt:aug_min_scale=0", adapter="vpt"),
        "pre",
        "adapter 'vpt': option aug_min_scale=0.0 is not valid; expected a finite number in (0, 1] (default 0.08).",
    ),
    "adapter-option-augment-choice": (
        lambda t: co("vpt:augment=maybe", adapter="vpt"),
        "pre",
        "adapter 'vpt': option augment='maybe' is not valid; expected one of True, False, auto (default 'auto').",
    ),
    "adapter-option-depth-zero": (
        lambda t: co("maple:depth=0", adapter="maple"),
        "pre",
        "adapter 'maple': option depth=0 is not valid; expected an integer in 1..48 (default 9).",
    ),
    "two-bad-options": (
        lambda t: co("coop:epochs=0", "coop:lr=-1"),
        "pre",
        f"adapter 'coop': option lr=-1.0 is not valid; expected {LR}",
    ),
    "scoped-option-not-in-grid": (
        lambda t: co("vpt:epochs=2"),
        "pre",
        "Scoped option for 'vpt', which is not in this grid.",
    ),
    # command-line values
    "duplicate-seeds": (lambda t: [*a(), "--seeds", "1,1"], "pre", "Duplicate seeds in [1, 1]."),
    "seed-range-backwards": (
        lambda t: [*a(), "--seeds", "3-1"],
        "pre",
        "Seed range '3-1' is empty; write it low-high, e.g. 1-3 (got --seeds '3-1').",
    ),
    "budget-negative": (
        lambda t: [*a(), "--budget", "-1"],
        "pre",
        "--budget -1 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
    ),
    "budget-zero-percent": (
        lambda t: [*a(), "--budget", "0"],
        "pre",
        "--budget 0 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
    ),
    "budget-huge": (
        lambda t: [*a(), "--budget", "1e9"],
        "pre",
        "--budget 1e+09 is not a budget: budgets are percentages of the pool in (0, 100] (e.g. --budget 1,2,5).",
    ),
    "budget-not-a-number": (
        lambda t: [*a(), "--budget", "five"],
        "pre",
        "--budget takes numbers (percent of the pool), got 'five'.",
    ),
    "budget-beyond-rounds": (
        lambda t: [*a(), "--budget", "5"],
        "pre",
        "Budget 5 % needs round 5, but runs have only 2 round(s); raise --rounds or drop that budget.",
    ),
    "results-dir-empty": (
        lambda t: [*a(), "--results-dir", ""],
        "pre",
        "--results-dir is empty; pass a folder, e.g. --results-dir results.",
    ),
    "rounds-negative": (lambda t: [*a(), "--rounds", "-1"], "pre", "--rounds must be a positive integer, got -1."),
    "round-budget-negative": (
        lambda t: [*a(), "--round-budget", "-1"],
        "pre",
        "--round-budget must be a positive integer, got -1.",
    ),
    "workers-negative": (lambda t: [*a(), "--workers", "-1"], "pre", "--workers must be at least 1, got -1."),
    "budget-pct-nan": (lambda t: [*a(), "--budget-pct", "nan"], "pre", "--budget-pct must be in (0, 100], got nan."),
    "suite-without-preset": (lambda t: [*a(), "--suite", "toy"], "pre", "--suite only applies to --preset runs."),
    "unknown-suite": (
        lambda t: ["run", "--preset", "table1", "--suite", "papr"],
        "pre",
        "Unknown suite 'papr'. Did you mean: paper? Available: paper, toy",
    ),
    "unsafe-plugin-name": (
        _unsafe_plugin,
        "pre",
        "strategy name '../../escaped' is not a safe name: it goes into file paths, so it must be 1-100 letters, digits, '_', '.', '+' or '-', start with a letter or digit, and not contain '..'. Rename the plugin (its entry-point name).",
    ),
    # preset files against the preset schema
    "preset-file-missing": (
        lambda t: ["run", "--preset", str(t / "none.toml")],
        "pre",
        "Preset file {tmp}/none.toml does not exist. Built-in presets: ablation_dualprompt, table1, table2, table3, table4.",
    ),
    "preset-toml-syntax": (
        lambda t: preset(t, GOOD_PRESET.replace('"Mine"', '"Mine')),
        "pre",
        PF + " is not valid TOML: Illegal character '\\n' (at line 1, column 14).",
    ),
    "preset-unknown-key": (
        lambda t: preset(t, GOOD_PRESET.replace("seeds", "seed")),
        "pre",
        PF
        + ": unknown key 'seed'. Did you mean 'seeds'? Valid keys: title, paper_table, adapter, adapter_title, backbone_title, datasets, budgets, seeds, rounds, backbone, columns, ablation.",
    ),
    "preset-missing-datasets": (
        lambda t: preset(t, GOOD_PRESET.replace('datasets = ["digits"]\n', "")),
        "pre",
        PF + ": missing key 'datasets' (a non-empty list of dataset names).",
    ),
    "preset-column-without-strategy": (
        lambda t: preset(t, GOOD_PRESET.replace('strategy = "random"\n', "")),
        "pre",
        PF + " [[columns]] #1: missing key 'strategy' (a strategy name).",
    ),
    "preset-rounds-wrong-type": (
        lambda t: preset(t, GOOD_PRESET.replace("rounds = 2", 'rounds = "2"')),
        "pre",
        PF + ": 'rounds' = '2' must be an integer >= 1.",
    ),
    "preset-role-invalid": (
        lambda t: preset(t, GOOD_PRESET + 'role = "ourz"\n'),
        "pre",
        PF + " [[columns]] #1: 'role' = 'ourz' must be one of baseline, ours.",
    ),
    "preset-backbone-key-typo": (
        lambda t: preset(t, GOOD_PRESET + '\n[backbone]\narc = "toy-clip"\n'),
        "pre",
        PF + " [backbone]: unknown key 'arc'. Did you mean 'arch'? Valid keys: arch, pretrained, quick_gelu.",
    ),
    # dataset integrity (csv / imagefolder with the toy CLIP)
    "one-class-dataset": (
        lambda t: csvds(t, "path,label\na.png,cat\nb.png,cat\n", "path,label\nc.png,cat\n"),
        "pre",
        "Dataset 'csv' has 1 class(es) ('cat'); classification needs at least 2.",
    ),
    "empty-test-split": (
        lambda t: csvds(t, TRAIN, "path,label\n"),
        "pre",
        "Dataset 'csv': the test split has no images; every run would record accuracy on nothing. Add images to that split.",
    ),
    "conflicting-labels": (
        lambda t: csvds(t, TRAIN + "a.png,dog\n", TEST),
        "pre",
        "Dataset 'csv': 1 image(s) listed in the train split with different labels: a.png ('cat' vs 'dog'). Each image needs exactly one label; fix the split file.",
    ),
    "train-test-overlap-path": (
        lambda t: csvds(t, TRAIN, TEST + "a.png,cat\n"),
        "pre",
        "Dataset 'csv': 1 test image(s) are also in the train split (the pool), by path or identical content: a.png. Test accuracy would count images the model was trained on. Remove them from one split, or pass --dataset-opt allow_overlap=true to accept the overlap (recorded in the run's configuration).",
    ),
    "train-test-overlap-content": (
        lambda t: csvds(t, TRAIN, TEST + "e.png,cat\n", edit=_copy("a.png", "e.png")),
        "pre",
        "Dataset 'csv': 1 test image(s) are also in the train split (the pool), by path or identical content: e.png = a.png. Test accuracy would count images the model was trained on. Remove them from one split, or pass --dataset-opt allow_overlap=true to accept the overlap (recorded in the run's configuration).",
    ),
    "symlink-leaves-data-root": (
        lambda t: csvds(t, TRAIN + "link.png,dog\n", TEST, edit=_link_out),
        "pre",
        "Dataset 'csv': 1 image(s) are symlinks that leave the dataset folder {tmp}/csvd: link.png -> {tmp}/outside.png. Copy the images into the folder, or pass --dataset-opt follow_symlinks=true to follow them.",
    ),
    "csv-not-utf8": (
        lambda t: csvds(t, TRAIN, TEST, edit=lambda r: (r / "train.csv").write_bytes(b"path,label\na.png,caf\xe9\n")),
        "pre",
        "Dataset 'csv': {tmp}/csvd/train.csv is not UTF-8 text (line 2, byte 0xe9). Save it as UTF-8 (e.g. in a spreadsheet: CSV UTF-8).",
    ),
    "csv-wrong-header": (
        lambda t: csvds(t, "file,class\na.png,cat\n", TEST),
        "pre",
        "prefix:Dataset 'csv': {tmp}/csvd/train.csv needs a header with columns 'path' and 'label'; found file, class.",
    ),
    "csv-empty-label": (
        lambda t: csvds(t, TRAIN + "c.png,\n", TEST),
        "pre",
        "Dataset 'csv': train.csv line 4 has an empty label.",
    ),
    "csv-absolute-path": (
        lambda t: csvds(t, TRAIN + "/etc/passwd,cat\n", TEST),
        "pre",
        "Dataset 'csv': train.csv line 4: image path '/etc/passwd' is absolute; split files must use paths relative to the dataset folder.",
    ),
    "csv-label-not-in-classnames": (
        lambda t: csvds(t, TRAIN, TEST + "d.png,bird\n", classnames="cat\ndog\n"),
        "pre",
        "Dataset 'csv': test.csv uses label(s) 'bird' not in classnames.txt. Valid classes: cat, dog.",
    ),
    "csv-missing-image": (
        lambda t: csvds(t, TRAIN + "nope.png,cat\n", TEST),
        "pre",
        "prefix:Dataset 'csv': 1 of 3 image(s) listed in the split are missing: {tmp}/csvd/nope.png.",
    ),
    "imagefolder-no-classes": (
        lambda t: ifolder(t, train=(), test=()),
        "pre",
        "prefix:Dataset 'imagefolder': {tmp}/ifd/train has no class folders.",
    ),
    "imagefolder-test-class-unknown": (
        lambda t: ifolder(t, test=("cat", "dog", "bird")),
        "pre",
        "Dataset 'imagefolder': {tmp}/ifd/test has class folder(s) with no train folder: bird. Valid classes: cat, dog.",
    ),
    "imagefolder-empty-test-split": (
        lambda t: ifolder(t, test_images=False),
        "pre",
        "Dataset 'imagefolder': the test split has no images; every run would record accuracy on nothing. Add images to that split.",
    ),
    "dataset-option-on-builtin-task": (
        lambda t: [*a(), "--dataset-opt", "path=x"],
        "pre",
        "Dataset 'digits' is built in and takes no loader options; got path='x'. Drop the --dataset-opt (it would be ignored yet change the run's identity).",
    ),
    "dataset-option-unknown": (
        lambda t: [*es(t), "--dataset-opt", "foo=1"],
        "pre",
        "Unknown option(s) 'foo' for dataset 'eurosat'. Valid options: allow_custom_split, allow_overlap, follow_symlinks, skip_corrupt.",
    ),
    "dataset-option-wrong-type": (
        lambda t: [*es(t), "--dataset-opt", "allow_overlap=maybe"],
        "pre",
        "Option allow_overlap='maybe' for dataset 'eurosat' must be true or false.",
    ),
    "template-two-slots": (
        lambda t: [*csvds(t, TRAIN, TEST), "--dataset-opt", "template={} and {}."],
        "pre",
        "Dataset 'csv': template '{{}} and {{}}.' must contain '{{}}' exactly once (where the class name goes), e.g. 'a photo of a {{}}.'.",
    ),
    "template-extra-field": (
        lambda t: [*csvds(t, TRAIN, TEST), "--dataset-opt", "template=a {} in {color}."],
        "pre",
        "Dataset 'csv': template 'a {{}} in {{color}}.' has braces other than the one '{{}}' for the class name (KeyError: 'color'); write a literal brace as '{{{{' or '}}}}'.",
    ),
    "zero-shot-prompt-too-long": (
        lambda t: csvds(t, "path,label\na.png,cat\nb.png," + "very " * 30 + "long dog\n", "path,label\nc.png,cat\n"),
        "pre",
        "prefix:Dataset 'csv': 1 zero-shot prompt(s) do not fit the text encoder's 32 positions, e.g. 'a photo of a very very",
    ),
    # every folder a run writes, checked before its compute
    "results-dataset-folder-is-a-file": (
        lambda t: a(dataset="toy_shapes", *([] if _in_results("toy_shapes")(t) else [])),
        "pre",
        "Cannot write results to {tmp}/results/toy_shapes: {tmp}/results/toy_shapes is not a directory. Fix its permissions, or pass another --results-dir.",
    ),
    "results-locks-folder-is-a-file": (
        lambda t: a(*([] if _in_results(".locks")(t) else [])),
        "pre",
        "Cannot write results to {tmp}/results/.locks: {tmp}/results/.locks is not a directory. Fix its permissions, or pass another --results-dir.",
    ),
    "results-failed-folder-is-a-file": (
        lambda t: a(*([] if _in_results("failed")(t) else [])),
        "pre",
        "Cannot write results to {tmp}/results/failed/digits: {tmp}/results/failed is not a directory. Fix its permissions, or pass another --results-dir.",
    ),
}
CASES.update(VALID_CASES)


def test_preflight_reports_every_problem_once_each(tmp_path):
    """Two independent problems: both named, one line each, exit 2, nothing written."""
    res = tmp_path / "results"
    out = CliRunner().invoke(
        main, [*a("--data-root", tmp_path / "nowhere", dataset="eurosat"), "--device", "gpu", "--results-dir", str(res)]
    )
    assert out.exit_code == 2, out.output
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert errors[0] == "error: Unknown --device 'gpu'. Valid: auto, cpu, cuda, cuda:N."
    assert any(ln.startswith("error: Dataset(s) eurosat hold real images") for ln in errors)
    assert any(
        ln.startswith(f"error: Dataset 'eurosat': the data root {tmp_path}/nowhere does not exist") for ln in errors
    )
    assert len(errors) == len(set(errors)) == 3
    assert not res.exists()


def _fill(msg: str) -> str:
    from albench.data.tasks import task_names

    return msg.format(
        strategies=names(STRATEGIES),
        adapters=names(ADAPTERS),
        datasets=", ".join(task_names()),
        coop_options=", ".join(sorted(ADAPTERS.get("coop").defaults)),
        tmp=_TMP[0],
    )


_TMP = [""]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


SENTINEL = {
    "schema": SCHEMA,
    "run_id": "random__coop__seed9__000000000000",
    "config_hash": "000000000000",
    "config": {},
    "strategy": "random",
    "adapter": "coop",
    "dataset": "digits",
    "seed": 9,
    "rounds": [],
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path):
    make_args, kind, expected = CASES[case]
    _TMP[0] = str(tmp_path)
    res = tmp_path / "results"
    (res / "digits").mkdir(parents=True)
    (res / "digits" / "random__coop__seed9__000000000000.json").write_text(json.dumps(SENTINEL))
    args = [str(x) for x in make_args(tmp_path)]
    if "--results-dir" not in args:
        args += ["--results-dir", str(res)]
    before = _snapshot(res)
    out = CliRunner().invoke(main, args)
    assert isinstance(out.exception, SystemExit), out.exception  # no uncaught exception
    assert "Traceback" not in out.output
    if kind == "pre":
        assert out.exit_code == 2, out.output
        if expected.startswith("prefix:"):  # messages that quote a library's own text after this prefix
            assert any(ln.startswith(f"error: {_fill(expected[7:])}") for ln in out.stderr.splitlines()), out.stderr
        else:
            assert f"error: {_fill(expected)}" in out.stderr.splitlines(), out.stderr
        assert _snapshot(res) == before  # results directory unchanged
    else:
        run, etype, msg = expected
        assert out.exit_code == 1, out.output
        line = next(ln for ln in out.stderr.splitlines() if ln.startswith(f"  {run}: "))
        assert line.startswith(f"  {run}: {etype}: {_fill(msg)}"), line
        after = _snapshot(res)
        added = sorted(set(after) - set(before))
        assert all(after[k] == before[k] for k in before)  # nothing existing changed
        assert len([k for k in added if k.startswith("failed/") and k.endswith(".json")]) == 1, added
        records = [k for k in added if not k.startswith(("failed/", ".locks/"))]
        if case == "nan-loss":  # the grid continues: the zero-shot run after the diverged CoOp run finishes
            assert len(records) == 1 and records[0].startswith("digits/random__zeroshot__seed1__"), added
        else:
            assert records == [], added  # never a run record for the failed run
        assert not any(k.endswith(".tmp") for k in after)


def test_debug_shows_the_traceback(tmp_path):
    out = CliRunner().invoke(main, ["--debug", *a(strategy="randm"), "--results-dir", str(tmp_path)])
    assert out.exit_code == 2 and "Traceback" in out.stderr
    assert "error: Unknown strategy 'randm'. Did you mean: random?" in out.stderr


def test_catalogue_size():
    assert len(CASES) >= 80
    assert len([c for c in CASES.values() if c[1] == "pre"]) >= 80  # found before any run


def test_every_bad_option_is_named_in_one_command(tmp_path):
    out = CliRunner().invoke(main, [*co("coop:epochs=0", "coop:lr=-1", "coop:csc=2"), "--results-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")] == [
        f"error: adapter 'coop': option epochs=0 is not valid; expected {INT_1000}",
        f"error: adapter 'coop': option lr=-1.0 is not valid; expected {LR}",
        "error: adapter 'coop': option csc=2 is not valid; expected true or false (default False).",
    ]
    assert not tmp_path.joinpath("digits").exists()


def test_opt_ins_accept_what_the_checks_refuse(tmp_path):
    """allow_overlap=true and follow_symlinks=true turn the two refusals into runs."""
    args = csvds(tmp_path, TRAIN + "link.png,dog\n", TEST + "a.png,cat\n", edit=_link_out)
    out = CliRunner().invoke(
        main,
        [
            *args,
            "--adapter",
            "zeroshot",
            "--dataset-opt",
            "allow_overlap=true",
            "--dataset-opt",
            "follow_symlinks=true",
            "--results-dir",
            str(tmp_path / "r"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert len(list((tmp_path / "r" / "csv").glob("*.json"))) == 2  # coop and zero-shot


# --- the catalogue in docs/bad-inputs.md is this file's CASES, row for row --------------------------------------
DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"


def catalogue_rows() -> list[str]:
    """The Markdown rows of docs/bad-inputs.md's catalogue table, one per case, in CASES order."""
    rows = []
    for cid, (_, kind, exp) in CASES.items():
        if kind == "pre":
            msg, when = (exp[7:] + " …" if exp.startswith("prefix:") else exp), "before any run (exit 2)"
        else:
            _, etype, m = exp
            msg, when = f"{etype}: {m}" + ("" if m.endswith(".") else " …"), "in its run (exit 1, failure record)"
        msg = msg.replace("{{}}", "{}").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{cid}` | {when} | {msg} |")
    return rows


def test_docs_catalogue_lists_every_case_with_its_message():
    table = [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if ln.startswith("| `")]
    assert table == catalogue_rows(), "docs/bad-inputs.md is out of date: python tests/test_bad_inputs.py"


if __name__ == "__main__":  # rewrite the catalogue table of docs/bad-inputs.md from CASES
    text = DOC.read_text(encoding="utf-8")
    head = text[: text.index("| Case | Fails | Message |")]
    DOC.write_text(
        head + "| Case | Fails | Message |\n| --- | --- | --- |\n" + "\n".join(catalogue_rows()) + "\n",
        encoding="utf-8",
    )
