"""Strict reading: duplicate records counted once, non-finite accuracies refused, preset schema, CSV encodings,
dataset integrity (overlap, conflicting labels, symlinks, case variants)."""

import json
import math
import shutil
import warnings

import pytest
from click.testing import CliRunner

from albench.api.errors import AlbenchError, DataError, InputProblems
from albench.cli.main import main
from albench.engine.records import check_record, iter_records, read_record

from helpers import make_record


# --- records ------------------------------------------------------------------------------------------------


def test_a_copied_record_is_counted_once_and_named(tmp_path):
    res = tmp_path / "results"
    p = make_record(res, "digits", "random", "coop", 1, [40.0, 41.0])
    backup = res / "backup" / "digits"
    backup.mkdir(parents=True)
    shutil.copy(p, backup / p.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = list(iter_records(res))
    assert [q for q, _ in got] == [p]  # the record at the run's own path wins
    assert [str(w.message) for w in caught] == [
        f"{backup / p.name} is a copy of the run record {p} (same run id and configuration hash); counted once."
    ]
    out = CliRunner().invoke(main, ["table", "--results-dir", str(res)])
    assert out.exit_code == 0, out.output
    assert "1 seed" in out.stdout and "2 seeds" not in out.stdout
    assert f"warning: {backup / p.name} is a copy of the run record {p}" in out.stderr


def test_two_seeds_are_two_runs_not_copies(tmp_path):
    res = tmp_path / "results"
    make_record(res, "digits", "random", "coop", 1, [40.0])
    make_record(res, "digits", "random", "coop", 2, [42.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(iter_records(res))) == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "nan", None, True])
def test_non_finite_accuracy_is_refused_at_write_and_at_read(tmp_path, bad):
    p = make_record(tmp_path, "digits", "random", "coop", 1, [40.0, 41.0])
    rec = json.loads(p.read_text())
    rec["rounds"][1]["accuracy"] = bad
    with pytest.raises(AlbenchError) as err:
        check_record(rec)
    assert str(err.value) == (
        f"Run {rec['run_id']} on 'digits': test accuracy {bad!r} in round 2 is not a finite "
        f"number; the record was not written. Check that the dataset's test split has images."
    )
    p.write_text(json.dumps(rec, allow_nan=True))
    assert read_record(p) is None


def test_a_nan_run_fails_with_its_reason_and_writes_no_record(tmp_path, monkeypatch, workspace):
    import albench.engine.protocol as protocol

    real = protocol._trajectory

    def nan_trajectory(*a, **k):  # the trajectory is a generator (it yields its training to the driver)
        rec = yield from real(*a, **k)
        rec["rounds"][-1]["accuracy"] = math.nan
        return rec

    monkeypatch.setattr(protocol, "_trajectory", nan_trajectory)
    spec = protocol.RunSpec("random", "zeroshot", "digits", seed=1, rounds=1)
    with pytest.raises(AlbenchError, match=r"test accuracy nan in round 1 is not a finite number"):
        protocol.execute(spec, tmp_path, workspace)
    assert list((tmp_path / "digits").glob("*.json")) == []
    fails = list((tmp_path / "failed").rglob("*.json"))
    assert len(fails) == 1 and "not a finite number" in json.loads(fails[0].read_text())["error"]


# --- presets ------------------------------------------------------------------------------------------------

GOOD = """title = "Mine"
adapter = "coop"
datasets = ["digits"]
seeds = [1]
rounds = 2
budgets = [1, 2]

[[columns]]
label = "Random"
strategy = "random"
"""


def _preset(tmp_path, text):
    p = tmp_path / "mine.toml"
    p.write_text(text)
    return p


def test_a_user_preset_file_runs_through_the_schema(tmp_path):
    from albench.engine.grid import load_preset

    p = load_preset(str(_preset(tmp_path, GOOD)))
    assert p.name == "mine" and p.datasets == ("digits",) and p.seeds == (1,) and p.rounds == 2
    assert [c.label for c in p.columns] == ["Random"]


@pytest.mark.parametrize(
    "text, messages",
    [
        (
            GOOD.replace("seeds = [1]", "seed = [1]"),
            [
                "unknown key 'seed'. Did you mean 'seeds'? Valid keys: title, paper_table, adapter, adapter_title, "
                "backbone_title, datasets, budgets, seeds, rounds, backbone, columns, ablation."
            ],
        ),
        (GOOD.replace("rounds = 2", "round = 2"), ["unknown key 'round'. Did you mean 'rounds'?"]),
        (GOOD.replace('datasets = ["digits"]\n', ""), ["missing key 'datasets' (a non-empty list of dataset names)."]),
        (GOOD.replace('strategy = "random"\n', ""), ["[[columns]] #1: missing key 'strategy' (a strategy name)."]),
        (GOOD.replace("rounds = 2", 'rounds = "two"'), ["'rounds' = 'two' must be an integer >= 1."]),
        (GOOD.replace("rounds = 2", "rounds = 0"), ["'rounds' = 0 must be an integer >= 1."]),
        (GOOD.replace("seeds = [1]", "seeds = [true]"), ["'seeds' = [True] must be a list of integer seeds."]),
        (
            GOOD.replace('label = "Random"', 'label = "Random"\nrole = "ourz"'),
            ["[[columns]] #1: 'role' = 'ourz' must be one of baseline, ours."],
        ),
        (GOOD.replace('datasets = ["digits"]', "datasets = []"), ["'datasets' is empty; list at least one dataset."]),
        (GOOD + '\n[backbone]\narc = "ViT-B-16"\n', ["[backbone]: unknown key 'arc'. Did you mean 'arch'?"]),
    ],
)
def test_preset_schema_problems_each_named(tmp_path, text, messages):
    from albench.engine.grid import load_preset

    p = _preset(tmp_path, text)
    with pytest.raises(InputProblems) as err:
        load_preset(str(p))
    assert len(err.value.problems) == len(messages)
    for got, want in zip(err.value.problems, messages):
        assert got.startswith(f"Preset file {p}") and want in got, got


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    p = _preset(tmp_path, GOOD.replace('title = "Mine"', 'title = "Mine'))
    out = CliRunner().invoke(main, ["run", "--preset", str(p), "--results-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert (
        f"error: Preset file {p} is not valid TOML: Illegal character '\\n' (at line 1, column 14)."
        in out.stderr.splitlines()
    )
    assert not (tmp_path / "r").exists()


def test_every_shipped_preset_passes_the_schema():
    from albench.engine.grid import load_preset, preset_names

    for name in preset_names():
        for suite in ("paper", "toy"):
            assert load_preset(name, suite).columns


# --- CSV encodings ------------------------------------------------------------------------------------------


def _csv_dataset(root, train, test, encoding="utf-8"):
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i, (name, colour) in enumerate(
        [("a.png", (255, 0, 0)), ("b.png", (0, 255, 0)), ("c.png", (0, 0, 255)), ("d.png", (9, 9, 9))]
    ):
        Image.new("RGB", (8, 8), colour).save(root / name)
    (root / "train.csv").write_bytes(train.encode(encoding) if isinstance(train, str) else train)
    (root / "test.csv").write_bytes(test.encode(encoding) if isinstance(test, str) else test)
    return root


def test_csv_with_a_byte_order_mark_reads(tmp_path):
    from albench.data.tasks import load_task

    root = _csv_dataset(
        tmp_path / "d", "path,label\na.png,cat\nb.png,dog\n", "path,label\nc.png,cat\nd.png,dog\n", encoding="utf-8-sig"
    )
    t = load_task("csv", data_root=str(root))
    assert t.classnames == ["cat", "dog"] and len(t.pool) == 2


def test_non_utf8_csv_names_file_line_and_byte(tmp_path):
    from albench.data.tasks import load_task

    root = _csv_dataset(
        tmp_path / "d", "path,label\na.png,caf\u00e9\nb.png,dog\n", "path,label\nc.png,dog\n", encoding="latin-1"
    )
    with pytest.raises(DataError) as err:
        load_task("csv", data_root=str(root))
    assert str(err.value) == (
        f"Dataset 'csv': {root / 'train.csv'} is not UTF-8 text (line 2, byte 0xe9). Save it as "
        f"UTF-8 (e.g. in a spreadsheet: CSV UTF-8)."
    )


# --- dataset integrity at the loader -----------------------------------------------------------------------


def test_overlap_by_content_is_refused_unless_opted_in(tmp_path):
    from albench.data.tasks import load_task

    root = _csv_dataset(tmp_path / "d", "path,label\na.png,cat\nb.png,dog\n", "path,label\ne.png,cat\nd.png,dog\n")
    shutil.copy(root / "a.png", root / "e.png")  # same bytes under another name
    with pytest.raises(DataError) as err:
        load_task("csv", data_root=str(root))
    assert (
        "1 test image(s) are also in the train split (the pool), by path or identical content: e.png = a.png."
        in str(err.value)
    )
    t = load_task("csv", data_root=str(root), allow_overlap=True)
    assert len(t.test) == 2


def test_same_path_two_labels_is_refused_same_label_kept_once(tmp_path):
    from albench.data.tasks import load_task

    root = _csv_dataset(tmp_path / "d", "path,label\na.png,cat\na.png,dog\nb.png,dog\n", "path,label\nc.png,cat\n")
    with pytest.raises(
        DataError,
        match=r"1 image\(s\) listed in the train split with different labels: "
        r"a.png \('cat' vs 'dog'\)",
    ):
        load_task("csv", data_root=str(root))
    (root / "train.csv").write_text("path,label\na.png,cat\na.png,cat\nb.png,dog\n")
    assert len(load_task("csv", data_root=str(root)).pool) == 2


def test_symlink_out_of_the_data_root_is_refused_unless_followed(tmp_path):
    from albench.data.tasks import load_task

    root = _csv_dataset(tmp_path / "d", "path,label\na.png,cat\nlink.png,dog\n", "path,label\nc.png,cat\nd.png,dog\n")
    outside = tmp_path / "outside.png"
    shutil.copy(root / "b.png", outside)
    (root / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match=r"1 image\(s\) are symlinks that leave the dataset folder"):
        load_task("csv", data_root=str(root))
    assert len(load_task("csv", data_root=str(root), follow_symlinks=True).pool) == 2
    (root / "inside.png").symlink_to(root / "b.png")  # a link that stays inside is fine
    (root / "train.csv").write_text("path,label\na.png,cat\ninside.png,dog\n")
    assert len(load_task("csv", data_root=str(root)).pool) == 2


def test_label_case_variants_are_a_warning_naming_both(tmp_path):
    root = _csv_dataset(tmp_path / "d", "path,label\na.png,Cat\nb.png,cat\n", "path,label\nc.png,Cat\nd.png,cat\n")
    out = CliRunner().invoke(
        main,
        [
            "run",
            "--strategy",
            "random",
            "--adapter",
            "zeroshot",
            "--dataset",
            "csv",
            "--data-root",
            str(root),
            "--backbone",
            "toy-clip",
            "--rounds",
            "1",
            "--round-budget",
            "1",
            "--device",
            "cpu",
            "--no-progress",
            "--results-dir",
            str(tmp_path / "r"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert (
        "warning: Dataset 'csv': class names 'Cat' and 'cat' differ only by case or spacing; they are separate "
        "classes with near-identical prompts. Merge them in the labels if they are the same class."
    ) in out.stderr


def test_record_paths_refuse_unsafe_names(tmp_path):
    from albench.engine.protocol import RunSpec, record_path

    assert (
        record_path(tmp_path, RunSpec("least-confidence", "coop", "digits", seed=1), "abc").parent
        == tmp_path / "digits"
    )
    for bad in ("../../escaped", "a/b", ".hidden", ""):
        with pytest.raises(AlbenchError, match="is not a safe name"):
            record_path(tmp_path, RunSpec(bad, "coop", "digits", seed=1), "abc")
