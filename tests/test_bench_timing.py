"""Benchmark methodology: CPU + wall samples, interleaving, summaries, per-section commit, stability check."""

from __future__ import annotations

import json
import time

import pytest

from albench import bench
from albench.bench import timing
from albench.api.registry import Registry


def test_timed_separates_cpu_from_wall():
    with timing.timed() as sw:
        time.sleep(0.2)  # wall passes, CPU does not
    assert sw.sample.wall_s >= 0.19 and sw.sample.cpu_s < 0.1
    with timing.timed() as sw:
        t = time.process_time()
        while time.process_time() - t < 0.1:
            pass
    assert sw.sample.cpu_s >= 0.09


def test_interleaved_alternates_order_and_repeats():
    calls = []
    out = timing.interleaved({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}, repeats=4)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [r for r, _ in out["a"]] == [1] * 4 and len(out["b"]) == 4
    assert all(isinstance(s, timing.Sample) for _, s in out["a"])


def test_summary_median_and_spread():
    s = timing.summary([3.0, 1.0, 2.0, 10.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 10.0 and s["n"] == 4
    assert s["spread_pct"] == pytest.approx(360.0)
    with pytest.raises(ValueError):
        timing.summary([])


def test_projection_needs_twenty_steps():
    timing.check_projection_steps(20)
    with pytest.raises(ValueError, match="at least 20"):
        timing.check_projection_steps(19)


def test_compare_runs_flags_ratios_outside_15_percent():
    rows = {r["ratio"]: r for r in timing.compare_runs({"x": 100.0, "y": 10.0, "z": 1.0}, {"x": 114.0, "y": 11.6})}
    assert rows["x"]["within"] and rows["x"]["diff_pct"] == 14.0
    assert not rows["y"]["within"] and rows["y"]["diff_pct"] == 16.0
    assert not rows["z"]["within"] and rows["z"]["run_2"] is None  # missing in one run fails


def test_sections_record_commit_dirty_flag_and_stability(tmp_path, monkeypatch):
    mod = tmp_path / "fake_bench_section.py"
    mod.write_text(
        "N = [0]\n"
        "def run(quick=False):\n"
        "    N[0] += 1\n"
        "    return {'title': 't', 'rows': [{'a': N[0]}], 'ratios': {'r': 10.0 * N[0]}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench, "SECTIONS", Registry("bench section", "albench.bench", None))  # restored after
    bench.register_section("fake", "fake_bench_section:run")
    res = bench.run_sections(["fake"], quick=True, out_dir=tmp_path / "out", stability=True)
    sec = res["sections"]["fake"]
    state = bench.git_state()
    assert sec["git_sha"] == state["git_sha"] and sec["dirty"] == state["dirty"] and len(sec["git_sha"]) == 40
    assert sec["rows"] == [{"a": 2}]  # the second run is kept, the first summarised
    (row,) = sec["stability"]["rows"]
    assert row == {"ratio": "r", "run_1": 10.0, "run_2": 20.0, "diff_pct": 100.0, "within": False}
    md = (tmp_path / "out" / "bench.md").read_text()
    assert "every ratio within ±15 %: NO" in md and state["git_sha"] in md
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["sections"]["fake"]["cpu_seconds"] >= 0


def test_git_state_is_dirty_for_code_changes_but_not_for_the_benchmark_outputs(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "reports").mkdir()
    out = tmp_path / "reports" / "bench.json"
    out.write_text("{}")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    assert bench.git_state((out,), where=tmp_path)["dirty"] is False
    out.write_text('{"sections": {}}')  # the previous section's own output
    assert bench.git_state((out,), where=tmp_path)["dirty"] is False
    assert bench.git_state((), where=tmp_path)["dirty"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    state = bench.git_state((out,), where=tmp_path)
    assert state["dirty"] is True and len(state["git_sha"]) == 40
