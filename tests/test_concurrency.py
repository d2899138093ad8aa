"""Concurrency (issue 7): 2 and 4 runner processes started at once on one grid and one results directory."""

import json
import re

import pytest

from helpers import GRID, RUNS, Victim, strip_timing, temp_files, valid_records

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1200)]


@pytest.mark.parametrize("n", [2, 4])
def test_runners_share_a_grid_each_run_done_once(warm, tmp_path, n):
    res = tmp_path / "res"
    procs = [Victim([*GRID, "--cache-dir", warm["cache"], "--results-dir", res]) for _ in range(n)]
    outs = [p.finish() for p in procs]
    assert all(rc == 0 for rc, _ in outs), "\n\n".join(t for _, t in outs)
    text = "\n".join(t for _, t in outs)
    done = re.findall(r"^done +digits (\S+) \|", text, flags=re.M)
    assert sorted(done) == sorted({d for d in done}) and len(done) == RUNS  # every run done exactly once
    for _, t in outs:  # each runner accounts for every run: done here, skipped, or busy elsewhere
        m = re.search(r"(\d+) run\(s\) done, (\d+) skipped, 0 failed(?:, (\d+) running in another process)?", t)
        assert m and sum(int(g or 0) for g in m.groups()) == RUNS, t
    recs = valid_records(res)
    assert sorted(recs) == sorted(warm["ref"])  # the union is the single-process grid
    for k, p in recs.items():  # same seeds -> same numbers (warm cache: encoder counts are 0 in both)
        assert strip_timing(json.loads(p.read_text())) == strip_timing(warm["ref"][k])
    assert temp_files(res) == [] and not (res / "failed").exists()
