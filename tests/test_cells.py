"""One configuration per cell: tables, extras, figures data and the report agree on which records form a cell."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from albench.cli.main import main
from albench.reporting.cells import config_id, option_diff, select, seeds_text
from albench.reporting.report import aubc_frame, curve_frame, write_report
from albench.reporting.tables import preset_tables, simple_table

from helpers import BASE, SEED_OFF, make_record
from test_tables_paper import row


def _with_options(path, **adapter_options):
    """Give a written record other adapter options (a second configuration of its column)."""
    rec = json.loads(path.read_text())
    rec["config"]["adapter_options"].update(adapter_options)
    rec["run_id"] += "x"
    path.unlink()
    new = path.with_name(rec["run_id"] + ".json")
    new.write_text(json.dumps(rec))
    return rec


@pytest.fixture
def two_configs(tmp_path):
    """toy_textures: Ours (dualprompt x dualprompt) with the defaults on seeds 1-3 (accuracy ~ 51 at 1 %) and
    with vpt_tokens=0 on seed 1 (accuracy 11 at every round); every other column once."""
    root = tmp_path / "results"
    for (s, a), base in BASE.items():
        for seed, off in SEED_OFF.items():
            make_record(root, "toy_textures", s, a, seed, [base + r + off for r in range(1, 7)])
    p = make_record(root, "toy_textures", "dualprompt", "dualprompt", 1, [11.0] * 6, epochs=21)
    rec = _with_options(p, epochs=20, vpt_tokens=0)
    default = next(
        r
        for r in map(lambda q: json.loads(q.read_text()), root.rglob("*.json"))
        if r["strategy"] == "dualprompt"
        and r["adapter"] == "dualprompt"
        and r["seed"] == 1
        and "vpt_tokens" not in r["config"]["adapter_options"]
    )
    return root, config_id(default), config_id(rec)


def _outputs(root, tmp_path, configs=()):
    """The number each output shows for Ours on toy_textures at 1 % (or its AUBC)."""
    t = preset_tables("table1", "toy", root, configs=configs)
    table = row(t["md"], "toy_textures (DTD)", "1%")[t["columns"].index("Ours")]
    ex = t["extras"]
    ex_aubc = ex[(ex["column"] == "Ours") & (ex["metric"] == "aubc")]
    from albench.reporting.cells import chosen_records
    from albench.engine.records import iter_records

    recs, notes = chosen_records([r for _, r in iter_records(root)], configs)
    cf = curve_frame(recs)
    curve = cf[(cf["label"] == "dualprompt") & (cf["adapter"] == "dualprompt") & (cf["round"] == 1)]
    af = aubc_frame(recs)
    bar = af[af["label"] == "dualprompt × dualprompt"]
    simple, frame, _ = simple_table(root, configs=configs)
    html = write_report(root, tmp_path / f"rep{len(configs)}", configs).read_text()
    return {
        "table": table,
        "extras_configs": set(ex_aubc["group"]),
        "extras_aubc": ex_aubc["value"].mean(),
        "curve": curve,
        "bar": bar,
        "notes": notes,
        "simple": simple,
        "html": html,
        "frame": t["frame"],
    }


@pytest.mark.slow
def test_every_output_shows_the_same_configuration(two_configs, tmp_path):
    root, default_id, other_id = two_configs
    o = _outputs(root, tmp_path)
    # chosen: the defaults (3 seeds beat 1); 1 % -> 50 + 1 + seed offsets = 51 ± 1
    assert o["table"].startswith("**51.0 ± 1.0**")
    assert o["extras_configs"] == {default_id} and o["extras_aubc"] == pytest.approx(50 + 3.5)
    assert list(o["curve"]["config"]) == [default_id] and float(o["curve"]["mean"].iloc[0]) == pytest.approx(51.0)
    assert list(o["bar"]["config"]) == [default_id] and float(o["bar"]["mean"].iloc[0]) == pytest.approx(53.5)
    assert int(o["bar"]["n"].iloc[0]) == 3
    # the left-out configuration is listed by what differs, in every output that lists notes
    diff = "adapter_options.vpt_tokens: unset → 0 (1 seed (seed 1); config " + other_id + ")"
    assert any(diff in n for n in o["notes"])
    assert diff in o["simple"] and diff in o["html"]
    assert "| toy_textures | dualprompt | 1 |" in o["simple"]
    assert "51.00 ± 1.00" in o["simple"] and "11.00" not in o["simple"]
    fr = o["frame"]
    assert set(fr[(fr["column"] == "Ours") & (fr["dataset"] == "toy_textures")]["config"]) == {default_id}

    # --config picks the other one everywhere
    o = _outputs(root, tmp_path, configs=(other_id[:5],))
    assert o["table"].startswith("11.0") and "±" not in o["table"].split("(")[0]
    assert o["extras_configs"] == {other_id} and o["extras_aubc"] == pytest.approx(11.0)
    assert list(o["curve"]["config"]) == [other_id] and float(o["curve"]["mean"].iloc[0]) == pytest.approx(11.0)
    assert list(o["bar"]["config"]) == [other_id] and float(o["bar"]["mean"].iloc[0]) == pytest.approx(11.0)
    assert any("chosen by --config" in n and "adapter_options.vpt_tokens: 0 → unset" in n for n in o["notes"])


def test_unknown_config_is_refused_with_the_known_ids(two_configs, tmp_path):
    root, default_id, other_id = two_configs
    res = CliRunner().invoke(
        main,
        [
            "table",
            "--preset",
            "table1",
            "--suite",
            "toy",
            "--config",
            "zzzz",
            "--results-dir",
            str(root),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2 and "--config 'zzzz' matches no configuration" in res.output
    assert default_id in res.output and other_id in res.output and not (tmp_path / "o").exists()


def test_choice_ignores_file_order_and_prefers_seeds_then_newest():
    def rec(seed, epochs, finished):
        return {
            "dataset": "d",
            "strategy": "s",
            "adapter": "a",
            "backbone": {"arch": "x"},
            "seed": seed,
            "config": {"seed": seed, "adapter_options": {"epochs": epochs}},
            "timing": {"finished_at": finished},
        }

    a = [rec(1, 1, "2026-01-01"), rec(2, 1, "2026-01-01")]
    b = [rec(1, 2, "2026-02-01"), rec(2, 2, "2026-02-01")]
    c = [rec(1, 3, "2026-03-01")]
    for order in (a + b + c, c + b + a, b + c + a):
        (cell,) = select(order).values()
        assert cell.chosen.config["adapter_options"]["epochs"] == 2  # 2 seeds beat 1; newer of the two-seed ones
        assert [o.config["adapter_options"]["epochs"] for o in cell.others] == [1, 3]
    assert option_diff(a[0]["config"], c[0]["config"]) == {"adapter_options.epochs": (1, 3)}
    assert seeds_text([1]) == "1 seed (seed 1)" and seeds_text([3, 1, 2]) == "3 seeds (seeds 1, 2, 3)"


def test_table_without_preset_honours_out_budget_seeds(two_configs, tmp_path):
    root, _, _ = two_configs
    out = tmp_path / "plain"
    res = CliRunner().invoke(
        main, ["table", "--results-dir", str(root), "--out", str(out), "--budget", "2,5", "--seeds", "2,3"]
    )
    assert res.exit_code == 0, res.output
    md = (out / "table.md").read_text()
    rounds = {ln.split("|")[3].strip() for ln in md.splitlines() if ln.startswith("| toy_textures")}
    assert rounds == {"2", "5"}
    # seeds 2, 3 of Random at 2 %: 40 + 2 + 0 and 40 + 2 + 1
    assert f"{np.mean([42.0, 43.0]):.2f} ± {np.std([42.0, 43.0], ddof=1):.2f}" in md
    assert "over 2 seeds (seeds 2, 3)" in md
    import pandas as pd

    csv = pd.read_csv(out / "table.csv")
    assert set(csv["round"]) == {2, 5} and set(csv["n"]) == {2}


def test_table_with_preset_honours_out_budget_seeds(two_configs, tmp_path):
    root, _, _ = two_configs
    res = CliRunner().invoke(
        main,
        [
            "table",
            "--preset",
            "table1",
            "--suite",
            "toy",
            "--results-dir",
            str(root),
            "--out",
            str(tmp_path / "p"),
            "--budget",
            "2",
            "--seeds",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    md = (tmp_path / "p" / "table1_toy.md").read_text()
    assert "| 2% |" in md and "| 1% |" not in md and "| 5% |" not in md
    assert "over 1 seed (seed 1); a cell with one seed shows no ±" in md
    cells = row(md, "toy_textures (DTD)", "2%")
    assert "41.0" in cells  # Random, seed 1 at 2 %: 40 + 2 - 1, no ±
