"""Determinism and configuration identity (issue 7)."""

import json
import shutil

import pytest
from click.testing import CliRunner

import albench
from albench.clip.backbone import BackboneSpec
from albench.cli.main import main
from albench.engine.protocol import RunSpec, Workspace, config_hash, run_config

from helpers import GRID, RUNS, strip_timing, valid_records


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def canonical_bytes(path) -> bytes:
    """The record's bytes with timing values blanked (after checking the file is json.dump(indent=1) output)."""
    raw = path.read_bytes()
    rec = json.loads(raw)
    assert raw == (json.dumps(rec, indent=1) + "\n").encode()
    return (json.dumps(strip_timing(rec), indent=1) + "\n").encode()


@pytest.mark.slow
def test_same_command_twice_gives_byte_identical_records(warm, tmp_path):
    for d in ("a", "b"):
        r = cli("run", *GRID, "--cache-dir", warm["cache"], "--results-dir", tmp_path / d)
        assert r.exit_code == 0, r.output
    a, b = valid_records(tmp_path / "a"), valid_records(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == RUNS
    for k in a:
        assert canonical_bytes(a[k]) == canonical_bytes(b[k])
    # the reference run (same command, earlier, other directory) is identical too
    ref_dir = warm["base"] / "ref"
    for k, p in valid_records(ref_dir).items():
        assert canonical_bytes(p) == canonical_bytes(a[k])


@pytest.mark.slow
def test_different_seed_gives_different_selections(warm):
    by_seed = {rec["seed"]: rec for rec in warm["ref"].values() if rec["strategy"] == "random"}
    s1 = [r["selected"] for r in by_seed[1]["rounds"]]
    s2 = [r["selected"] for r in by_seed[2]["rounds"]]
    assert s1[0] != s2[0] and s1[1] != s2[1]


@pytest.mark.slow
def test_results_do_not_depend_on_order_or_parallelism(warm, tmp_path):
    grid = list(GRID)
    grid[grid.index("random,entropy")] = "entropy,random"
    grid[grid.index("1,2")] = "2,1"
    r = cli("run", *grid, "--cache-dir", warm["cache"], "--results-dir", tmp_path / "rev")
    assert r.exit_code == 0, r.output
    r = cli("run", *GRID, "--workers", "2", "--cache-dir", warm["cache"], "--results-dir", tmp_path / "par")
    assert r.exit_code == 0, r.output
    for d in ("rev", "par"):
        recs = valid_records(tmp_path / d)
        assert sorted(recs) == sorted(warm["ref"])
        for k, p in recs.items():
            assert strip_timing(json.loads(p.read_text())) == strip_timing(warm["ref"][k]), (d, k)


# --- configuration identity ----------------------------------------------------------


@pytest.mark.slow
def test_config_hash_covers_everything_that_affects_numbers(warm, monkeypatch):
    ws = Workspace(warm["cache"], device="cpu", progress=False)
    base = dict(strategy="random", adapter="coop", dataset="digits", seed=1, rounds=2, adapter_options={"epochs": 2})

    def h(**kw):
        spec = RunSpec(**{**base, **kw})
        return config_hash(
            run_config(spec, ws.task(spec.dataset, None, spec.dataset_options), ws.backbone(spec.backbone))
        )

    variants = {
        "base": h(),
        "strategy": h(strategy="typiclust"),
        "strategy option": h(strategy="typiclust", strategy_options={"k_nn": 10}),
        "adapter": h(adapter="zeroshot", adapter_options={}),
        "adapter option": h(adapter_options={"epochs": 3}),
        "adapter option lr": h(adapter_options={"epochs": 2, "lr": 0.03}),
        "dataset": h(dataset="toy_textures"),
        "backbone weights": h(backbone=BackboneSpec(pretrained="random")),
        "rounds": h(rounds=3),
        "round fraction": h(round_fraction=0.02),
        "round budget": h(round_budget=5),
        "seed": h(seed=2),
        "dataset options": h(dataset_options={"template": "a photo of the number {}."}),
    }
    assert len(set(variants.values())) == len(variants), variants
    assert h(label="Ours") == variants["base"]  # the table label is not part of the identity
    assert h(adapter_options={"epochs": 2, "lr": 0.01}) == variants["base"]  # spelling out a default changes nothing
    monkeypatch.setattr(albench, "__version__", "999.0")
    assert h() != variants["base"]  # the albench version is part of the identity


def test_split_file_and_weights_file_contents_change_the_identity(tmp_path):
    from albench.data.datasets.fake import generate

    generate("eurosat", tmp_path, image_size=8)
    ws = Workspace(tmp_path / "cache", device="cpu", progress=False)
    fp = ws.task("eurosat", str(tmp_path), {"allow_custom_split": True}).fingerprint()
    split = tmp_path / "eurosat" / "split_zhou_EuroSAT.json"
    data = json.loads(split.read_text())
    data["train"][0], data["test"][0] = data["test"][0], data["train"][0]
    split.write_text(json.dumps(data))
    ws2 = Workspace(tmp_path / "cache", device="cpu", progress=False)
    assert ws2.task("eurosat", str(tmp_path), {"allow_custom_split": True}).fingerprint() != fp

    from safetensors.torch import save_file

    from albench.clip.backbone import Backbone
    from albench.data.toy.model import WEIGHTS_FILE
    from albench.clip.backbone import read_state_dict

    sd = read_state_dict(WEIGHTS_FILE)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "same.safetensors"))
    sd["logit_scale"] = sd["logit_scale"] + 1.0
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "other.safetensors"))
    same = Backbone.load(BackboneSpec(pretrained=str(tmp_path / "same.safetensors")), device="cpu").identity
    other = Backbone.load(BackboneSpec(pretrained=str(tmp_path / "other.safetensors")), device="cpu").identity
    assert same != other and same.startswith("toy-clip:") and other.startswith("toy-clip:")


@pytest.mark.slow
def test_changing_an_option_reruns_and_table_never_averages_different_hashes(warm, tmp_path):
    res = tmp_path / "r"
    shutil.copytree(warm["base"] / "ref", res)
    grid3 = [("epochs=3" if a == "epochs=2" else a) for a in GRID]
    r = cli("run", *grid3, "--cache-dir", warm["cache"], "--results-dir", res)
    assert r.exit_code == 0 and f"{RUNS} run(s) done, 0 skipped, 0 failed" in r.output, r.output
    r = cli("run", *GRID, "--cache-dir", warm["cache"], "--results-dir", res)
    assert r.exit_code == 0 and f"0 run(s) done, {RUNS} skipped, 0 failed" in r.output, r.output
    recs = [json.loads(p.read_text()) for p in valid_records(res).values()]
    assert len({rec["config_hash"] for rec in recs}) == 2 * RUNS
    t = cli("table", "--results-dir", res)
    assert t.exit_code == 0, t.output
    import statistics

    from albench.reporting.tables import config_group

    groups = {}
    for rec in recs:
        groups.setdefault((rec["strategy"], rec["config"]["adapter_options"]["epochs"]), set()).add(config_group(rec))
    assert all(len(g) == 1 for g in groups.values())
    header = next(line for line in t.stdout.splitlines() if line.startswith("| dataset"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    row1 = next(line for line in t.stdout.splitlines() if line.startswith("| digits | coop | 1 |"))
    for strategy in ("random", "entropy"):
        # one column per strategy: the newer configuration (epochs=3; both have 2 seeds), never a mean of both
        accs = [
            rec["rounds"][0]["accuracy"]
            for rec in recs
            if rec["strategy"] == strategy and rec["config"]["adapter_options"]["epochs"] == 3
        ]
        assert [c.strip() for c in row1.strip("|").split("|")][
            cols.index(strategy)
        ] == f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}"
        (old,) = groups[(strategy, 2)]
        (new,) = groups[(strategy, 3)]
        # the other configuration is listed by what differs
        assert (
            f"showing config {new} (2 seeds (seeds 1, 2); chosen by most seeds, then newest); left out: "
            f"adapter_options.epochs: 3 → 2 (2 seeds (seeds 1, 2); config {old})"
        ) in t.stdout
