"""The bad-input catalogue (issue 7; README "Bad input catalogue").

Every case runs ``albench run`` (or ``table``) in-process and checks: the exact message, a non-zero exit, no
traceback, and the results directory. Input errors found before any run ("pre") exit 2 and leave the results
directory byte-for-byte unchanged. Errors that belong to one run ("run": its data, weights, cache, plugin output
or training) exit 1 after the grid finished; they add one failure record under results/failed/ (error +
traceback, for `albench status`) and never a run record.
"""
import json
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

BASE = ["--seeds", "1", "--rounds", "2", "--adapter-opt", "coop:epochs=2", "--adapter-opt", "coop:min_steps=0",
        "--device", "cpu", "--no-progress"]


def a(*extra, strategy="random", adapter="coop", dataset="digits"):
    return ["run", "--strategy", strategy, "--adapter", adapter, "--dataset", dataset, *BASE, *map(str, extra)]


# --- strategies that break the selection contract (the harness checks every strategy's output) ---
class Dup(Strategy):
    def select(self, ctx):
        u = ctx.unlabeled
        return np.concatenate([u[:1], u[: ctx.budget - 1]])


class Relabel(Strategy):
    def select(self, ctx):
        return np.concatenate([ctx.labeled[:1], ctx.unlabeled[: ctx.budget - 1]]) if ctx.labeled.size else ctx.unlabeled[: ctx.budget]


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
    STRATEGIES._entries["broken"] = (EntryPoint("broken", target, "albench.strategies"),
                                     PluginInfo("broken", target, "albench-broken", "0.3"))
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
    return a("--data-root", eurosat(tmp, edit), "--allow-custom-split", "--round-budget", "1", "--backbone", "toy-clip",
             dataset="eurosat", strategy=strategy)


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
    "unknown-strategy": (lambda t: a(strategy="randm"), "pre",
                         "Unknown strategy 'randm'. Did you mean: random? Available: {strategies}"),
    "unknown-adapter": (lambda t: a(adapter="cop"), "pre", "Unknown adapter 'cop'. Did you mean: coop? Available: {adapters}"),
    "unknown-dataset": (lambda t: a(dataset="digitz"), "pre", "Unknown dataset 'digitz'. Did you mean: digits? Available: {datasets}"),
    "unknown-preset": (lambda t: ["run", "--preset", "tabel1"], "pre", "Unknown preset 'tabel1'. Did you mean: table1, table4, table3? Available: table1, table2, table3, table4"),
    "unknown-launcher": (lambda t: [*a(), "--launcher", "slurmm"], "pre", "Unknown launcher 'slurmm'. Did you mean: slurm? Available: local, slurm"),
    "empty-strategy-list": (lambda t: a(strategy="random,"), "pre", "Empty item in list 'random,'; use comma-separated names like 'random,entropy'."),
    "empty-seed-list": (lambda t: [*a(), "--seeds", ""], "pre", "Empty item in list ''; use comma-separated names like 'random,entropy'."),
    "budget-zero": (lambda t: [*a(), "--budget-pct", "0"], "pre", "--budget-pct must be in (0, 100], got 0."),
    "budget-over-100": (lambda t: [*a(), "--budget-pct", "150"], "pre", "--budget-pct must be in (0, 100], got 150."),
    "round-budget-zero": (lambda t: [*a(), "--round-budget", "0"], "pre", "--round-budget must be a positive integer, got 0."),
    "budget-not-whole-rounds": (lambda t: [*a(), "--budget", "1.5"], "pre", "Budget 1.5 % is not a whole number of rounds of 1 %."),
    "budget-larger-than-pool": (lambda t: [*a(), "--round-budget", "1000"], "pre", "2 rounds of 1000 labels need 2000 samples, but the pool of 'digits' has only 1200."),
    "rounds-zero": (lambda t: [*a(), "--rounds", "0"], "pre", "--rounds must be a positive integer, got 0."),
    "seed-not-integer": (lambda t: [*a(), "--seeds", "1,x"], "pre", "Seed 'x' is not an integer (got --seeds '1,x')."),
    "workers-zero": (lambda t: [*a(), "--workers", "0"], "pre", "--workers must be at least 1, got 0."),
    "unknown-adapter-option": (lambda t: [*a(), "--adapter-opt", "epoch=3"], "pre", "Unknown option for adapter 'coop' 'epoch'. Did you mean: epochs? Available: {coop_options}"),
    "option-not-key-value": (lambda t: [*a(), "--adapter-opt", "epochs"], "pre", "Option 'epochs' must look like key=value."),
    "data-root-missing": (lambda t: a("--data-root", t / "nowhere", dataset="eurosat"), "pre", "Dataset 'eurosat': the data root {tmp}/nowhere does not exist or is not a folder."),
    "split-file-missing": (lambda t: es(t, lambda ds: (ds / "split_zhou_EuroSAT.json").unlink()), "pre", "Dataset 'eurosat': split file not found: {tmp}/data/eurosat/split_zhou_EuroSAT.json"),
    "split-file-malformed": (lambda t: es(t, _bad_json), "pre", "prefix:Dataset 'eurosat': split file {tmp}/data/eurosat/split_zhou_EuroSAT.json is not valid JSON (line 1, column 30: Expecting value)."),
    "split-names-missing-image": (lambda t: es(t, split_edit(lambda d: d["train"].append(["AnnualCrop/nope.jpg", 0, "Annual Crop Land"]))), "pre", "prefix:Dataset 'eurosat': 1 of 21 image(s) listed in the split are missing: {tmp}/data/eurosat/2750/AnnualCrop/nope.jpg."),
    "split-path-escapes-root": (lambda t: es(t, split_edit(lambda d: d["test"].append(["../../etc/passwd", 0, "Annual Crop Land"]))), "pre", "Dataset 'eurosat': split_zhou_EuroSAT.json test[10]: image path '../../etc/passwd' contains '..' and would leave the dataset folder; split files must use paths inside it."),
    "class-without-training-images": (lambda t: es(t, split_edit(_no_train_for_class)), "pre", "prefix:Dataset 'eurosat': 1 class(es) have no training images in "),
    "corrupt-image": (lambda t: es(t, _corrupt_image), "run", (ES, "DataError", "Cannot decode image {tmp}/data/eurosat/2750/AnnualCrop/AnnualCrop_1.jpg")),
    # weights and the cache directory are checked by the preflight, once, before any run
    "weights-missing": (lambda t: [*a(), "--pretrained", t / "none.safetensors"], "pre", "Weights file {tmp}/none.safetensors does not exist. For the toy CLIP use --pretrained albench-toy (shipped), a file saved from it, or --pretrained random."),
    "weights-wrong-architecture": (lambda t: [*a(), "--pretrained", _weights(t, "wrong-arch")], "pre", "prefix:Weights file {tmp}/wrong-arch.safetensors does not match architecture 'toy-clip': 2 shape mismatches (e.g. token_embedding.weight: file (5, 4) vs toy-clip ("),
    "weights-truncated": (lambda t: [*a(), "--pretrained", _weights(t, "truncated")], "pre", "prefix:Could not read weights file {tmp}/truncated.safetensors"),
    "pretrained-tag-unknown": (lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", "openaii"], "pre", "prefix:Unknown pretrained tag for 'ViT-B-32' 'openaii'. Did you mean: openai?"),
    "cache-dir-not-writable": (lambda t: [*a(), "--cache-dir", _blocked(t)], "pre", "Cannot write the feature cache to {tmp}/blocker/sub: {tmp}/blocker is not a directory. Pass --cache-dir or set ALBENCH_CACHE to a writable directory."),
    "results-dir-not-writable": (lambda t: [*a(), "--results-dir", _blocked(t)], "pre", "Cannot write results to {tmp}/blocker/sub: {tmp}/blocker is not a directory. Pass --results-dir with a writable directory."),
    "plugin-import-raises": (lambda t: a(strategy="broken"), "pre", "strategy 'broken' from distribution albench-broken 0.3 failed to import (albench_broken_plugin:Broken): ImportError: needs the package frobnicate, which is not installed"),
    "plugin-duplicate-indices": (lambda t: a(strategy="dup"), "run", ("digits dup__coop__seed1", "ContractError", "strategy 'dup' returned duplicate indices [0].")),
    "plugin-labeled-indices": (lambda t: a(strategy="relabel"), "run", ("digits relabel__coop__seed1", "ContractError", "strategy 'relabel' returned already-labelled indices [0].")),
    "plugin-out-of-range": (lambda t: a(strategy="outofrange"), "run", ("digits outofrange__coop__seed1", "ContractError", "strategy 'outofrange' returned out-of-range indices")),
    "plugin-wrong-count": (lambda t: a(strategy="toomany"), "run", ("digits toomany__coop__seed1", "ContractError", "strategy 'toomany' returned 13 indices in round 1; the budget is 12")),
    "nan-loss": (lambda t: a("--adapter-opt", "coop:lr=1e30", adapter="coop,zeroshot"), "run", (RAND, "TrainingError", "coop round 1: training loss became nan at step 2 of 2")),
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
    "device-gpu": (lambda t: [*a(), "--device", "gpu"], "pre", "Unknown --device 'gpu'. Valid: auto, cpu, cuda, cuda:N."),
    "device-cuda-without-gpu": (lambda t: [*a(), "--device", "cuda"], "pre", "prefix:--device cuda: no CUDA GPU is visible on this machine"),
    "real-data-with-default-toy-backbone": (lambda t: a("--data-root", eurosat(t), dataset="eurosat"), "pre", "Dataset(s) eurosat hold real images, but no backbone was chosen and the default is the toy CLIP (trained on procedural images only). Pass --backbone and --pretrained, e.g. --backbone ViT-B-16 --pretrained openai (or --pretrained /path/to/open_clip_model.safetensors), or --backbone toy-clip to use the toy CLIP on purpose."),
    "imagefolder-without-folder": (lambda t: a("--backbone", "toy-clip", dataset="imagefolder"), "pre", "Dataset 'imagefolder': no folder given. Pass --data-root DIR or --dataset-opt path=DIR."),
    "imagefolder-without-test-split": (lambda t: a("--backbone", "toy-clip", "--data-root", _imagefolder(t, ("train",)), dataset="imagefolder"), "pre", "Dataset 'imagefolder': split folder not found: {tmp}/ifolder/test"),
    "template-without-braces": (lambda t: a("--backbone", "toy-clip", "--data-root", _imagefolder(t), "--dataset-opt", "template=a photo.", dataset="imagefolder"), "pre", "Dataset 'imagefolder': template 'a photo.' must contain '{{}}' exactly once (where the class name goes), e.g. 'a photo of a {{}}.'."),
    "csv-without-test-file": (lambda t: a("--backbone", "toy-clip", "--data-root", t, dataset="csv"), "pre", "Dataset 'csv': split file not found: {tmp}/train.csv"),
    "weights-file-activation-undecided": (lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", _any_file(t)], "pre", "prefix:Cannot tell which activation the weights file {tmp}/open_clip_model.safetensors needs: ViT-B-32 has checkpoints trained with QuickGELU (openai, laion400m_e31, "),
    "quick-gelu-contradicts-tag": (lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", "openai", "--no-quick-gelu"], "pre", "--no-quick-gelu contradicts the weights: open_clip's pretrained config of ViT-B-32 / openai says QuickGELU. Drop --no-quick-gelu."),
    "pretrained-tag-with-file-unknown-tag": (lambda t: [*a(), "--backbone", "ViT-B-32", "--pretrained", f"opnai={_any_file(t)}"], "pre", "prefix:Unknown pretrained tag for 'ViT-B-32' (in --pretrained TAG=FILE) 'opnai'. Did you mean: openai?"),
}
CASES.update(REAL_CASES)


def test_preflight_reports_every_problem_once_each(tmp_path):
    """Two independent problems: both named, one line each, exit 2, nothing written."""
    res = tmp_path / "results"
    out = CliRunner().invoke(main, [*a("--data-root", tmp_path / "nowhere", dataset="eurosat"), "--device", "gpu",
                                    "--results-dir", str(res)])
    assert out.exit_code == 2, out.output
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert errors[0] == "error: Unknown --device 'gpu'. Valid: auto, cpu, cuda, cuda:N."
    assert any(ln.startswith("error: Dataset(s) eurosat hold real images") for ln in errors)
    assert any(ln.startswith(f"error: Dataset 'eurosat': the data root {tmp_path}/nowhere does not exist") for ln in errors)
    assert len(errors) == len(set(errors)) == 3
    assert not res.exists()


def _fill(msg: str) -> str:
    from albench.data.tasks import task_names

    return msg.format(strategies=names(STRATEGIES), adapters=names(ADAPTERS), datasets=", ".join(task_names()),
                      coop_options=", ".join(sorted(ADAPTERS.get("coop").defaults)), tmp=_TMP[0])


_TMP = [""]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


SENTINEL = {"schema": SCHEMA, "run_id": "random__coop__seed9__000000000000", "config_hash": "000000000000",
            "config": {}, "strategy": "random", "adapter": "coop", "dataset": "digits", "seed": 9, "rounds": []}


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
    assert len(CASES) >= 25
