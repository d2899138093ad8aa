"""Crash safety (issue 7): SIGKILL at random moments, inside record writes and feature caching; SIGINT;
failed writes; corrupt records and cache files.

Victims are real ``python -m albench.cli.main run`` processes on a 4-run grid (random, entropy x seeds 1, 2 on
digits, 2 rounds, 2 epochs) sharing a warm feature cache. After every kill the same command is run again
(in-process, same code path) and the finished grid must hold exactly one valid record per run, equal to an
uninterrupted run's records apart from timings, with no temp files left and no run redone.
"""

import errno
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from albench.api.errors import AlbenchError
from albench.data.features import FeatureCache
from albench.engine.records import read_record

from helpers import (
    CRASH_HOOKS,
    GRID,
    RUNS,
    Victim,
    cli,
    kill_while_writing,
    slow_write_env,
    strip_timing,
    temp_files,
    valid_records,
)

RANDOM_KILLS, WRITE_KILLS, CACHE_KILLS = 12, 5, 5  # 22 SIGKILL trials; plus 2 SIGINT trials
KILL_STATS: dict = {"sigkill": 0, "sigint": 0}


def check_after_kill(res: Path):
    """Right after a kill: whatever sits at a record's final name is a whole, valid record."""
    for p in res.rglob("*.json"):
        if p.name.startswith("."):
            continue
        assert read_record(p) is not None, f"partial record {p}"  # (a kill writes no failure record either)


def restart_and_check(res: Path, cache: Path, ref: dict, compare_encoder: bool = True):
    survivors = {k: p.stat().st_mtime_ns for k, p in valid_records(res).items()}
    out = cli("run", *GRID, "--cache-dir", cache, "--results-dir", res)
    assert out.exit_code == 0, out.output
    assert f"{RUNS - len(survivors)} run(s) done, {len(survivors)} skipped, 0 failed" in out.output
    recs = valid_records(res)
    assert sorted(recs) == sorted(ref)  # exactly one valid record per run
    for k, p in recs.items():
        rec = json.loads(p.read_text())  # every record loads as JSON and as a record
        assert strip_timing(rec, not compare_encoder) == strip_timing(ref[k], not compare_encoder)
    for k, mtime in survivors.items():  # finished runs were not redone
        assert recs[k].stat().st_mtime_ns == mtime
    assert [p.name for p in res.rglob("*.json") if p.stem not in recs] == []  # nothing else that looks like a record
    assert temp_files(res) == [] and temp_files(cache) == []
    assert not (res / "failed").exists() or not list((res / "failed").rglob("*"))


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(2400)
def test_sigkill_at_random_moments_inside_writes_and_caching(warm, tmp_path):
    rng = random.Random(7)
    cache, ref = warm["cache"], warm["ref"]
    # calibrate: one whole subprocess run (it must also reproduce the in-process reference exactly)
    v = Victim([*GRID, "--cache-dir", cache, "--results-dir", tmp_path / "calib"])
    v.wait_for(v.started)
    t0 = time.monotonic()
    rc, text = v.finish()
    span = time.monotonic() - t0
    assert rc == 0, text
    restart_and_check(tmp_path / "calib", cache, ref)  # 4 skipped, records equal to the reference

    kills = {"random": 0, "write": 0, "cache": 0}
    # 1) random moments after start-up, spread over the grid's working time
    attempts = 0
    while kills["random"] < RANDOM_KILLS:
        attempts += 1
        assert attempts <= RANDOM_KILLS + 8, f"only {kills['random']} random kills landed in {attempts} attempts"
        res = tmp_path / f"random{attempts}"
        v = Victim([*GRID, "--cache-dir", cache, "--results-dir", res])
        v.wait_for(v.started)
        time.sleep(rng.uniform(0.0, 0.95 * span))
        if v.signal(signal.SIGKILL):
            kills["random"] += 1
        v.finish()
        check_after_kill(res)
        restart_and_check(res, cache, ref)
    # 2) inside a record write: the temp file is written, the rename has not happened
    for i in range(WRITE_KILLS):
        res = tmp_path / f"write{i}"
        v = Victim([*GRID, "--cache-dir", cache, "--results-dir", res], slow_write_env(60, "*.json"))
        kill_while_writing(v, res, rng)
        kills["write"] += 1
        assert len(temp_files(res)) == 1 and valid_records(res) == {}
        check_after_kill(res)
        restart_and_check(res, cache, ref)  # the stale temp file is removed by the run that owns it
    # 3) inside feature caching: a cold copy of (part of) the cache, killed between write and rename
    feats = sorted((cache / "features").glob("*.safetensors"))
    assert len(feats) >= 2
    for i in range(CACHE_KILLS):
        c = tmp_path / f"cache{i}"
        shutil.copytree(cache, c)
        for f in rng.sample(feats, rng.randint(1, len(feats))):
            (c / "features" / f.name).unlink()
        res = tmp_path / f"caching{i}"
        v = Victim([*GRID, "--cache-dir", c, "--results-dir", res], slow_write_env(60, "*.safetensors"))
        kill_while_writing(v, c, rng)
        kills["cache"] += 1
        check_after_kill(res)
        restart_and_check(res, c, ref, compare_encoder=False)  # features recomputed: encoder counts differ
        for f in (c / "features").glob("*.safetensors"):  # every cache entry is whole and checksummed
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as sf:
                meta = sf.metadata()
                t = sf.get_tensor("features")
            import hashlib

            assert meta["sha256"] == hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
        assert sorted(p.name for p in (c / "features").glob("*.safetensors")) == sorted(f.name for f in feats)
    total = sum(kills.values())
    KILL_STATS["sigkill"] = total
    assert kills == {"random": RANDOM_KILLS, "write": WRITE_KILLS, "cache": CACHE_KILLS} and total >= 20


def ctrl_c_env(**hooks: str) -> dict[str, str]:
    """Environment for a ``Victim`` that takes SIGINT as Ctrl-C at a terminal, plus crash-hook settings.

    The test runner may itself run with SIGINT ignored (a background job of a shell script), which the victim
    would inherit and keep: then no signal stops the grid and the test checks nothing about albench's Ctrl-C
    path. tests/crashhooks/sitecustomize.py restores Python's handler (``ALBENCH_TEST_SIGINT=default``).
    """
    path = os.pathsep.join(p for p in (str(CRASH_HOOKS), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "ALBENCH_TEST_SIGINT": "default", **hooks}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_sigint_stops_cleanly_says_what_finished_and_exits_nonzero(warm, tmp_path):
    """Ctrl-C after the first records (a) and inside a record write (b): exit 130, a message naming what
    finished, nothing partial or temporary left, and the same command finishes the rest.

    Both interrupts land at a point fixed by the crash hook, not by timing: the grid's runs take about 0.1 s
    each, so a signal sent merely "after the first record" could arrive after the whole grid had finished.
    """
    cache, ref = warm["cache"], warm["ref"]
    # (a) after the first records, while the grid is still running: the hook holds the first record write of
    # the second column (entropy) just before it starts, and says so; its runs have computed their results
    # but nothing of them is on disk. The signal is sent once the hold has begun, so it lands mid-grid
    # however loaded the machine is. (Holding the whole column keeps this true whether its two seeds run one
    # by one or in lock step as one batch that writes both records at its end.)
    res = tmp_path / "a"
    held = "crashhooks: holding "
    v = Victim(
        [*GRID, "--cache-dir", cache, "--results-dir", res],
        ctrl_c_env(ALBENCH_TEST_HOLD_WRITE="60:entropy__coop__*.json"),
    )
    assert v.wait_for(lambda: any(line.startswith(held) for line in v.lines)), "\n".join(v.lines)
    finished = sorted(k for k in ref if k.startswith("random__coop__"))
    assert len(finished) == 2 and sorted(valid_records(res)) == finished, v.lines  # the first column is done
    assert temp_files(res) == []  # and the held write has not begun
    assert v.signal(signal.SIGINT)
    rc, text = v.finish()
    assert rc == 130, text
    holds = [Path(line[len(held) :]) for line in text.splitlines() if line.startswith(held)]
    assert len(holds) == 1 and holds[0].parent == res / "digits", text  # one held write, never completed
    assert holds[0].match("entropy__coop__seed?__*.json") and not holds[0].exists(), text
    assert sorted(valid_records(res)) == finished  # the interrupt wrote nothing more
    assert (
        f"interrupted: 2 of {RUNS} run(s) finished (records written atomically), 2 not finished; "
        f"nothing partial was written. Run the same command again to finish the rest."
    ) in text
    for slug in ("random__coop__seed1", "random__coop__seed2"):
        assert f"  finished: digits {slug}  [" in text
    for slug in ("entropy__coop__seed1", "entropy__coop__seed2"):
        assert f"  not finished: digits {slug}" in text
    assert "Traceback" not in text and temp_files(res) == []
    restart_and_check(res, cache, ref)
    # (b) inside a record write: the temp file is removed on the way out, before any restart
    res = tmp_path / "b"
    v = Victim([*GRID, "--cache-dir", cache, "--results-dir", res], ctrl_c_env(ALBENCH_TEST_SLOW_WRITE="60:*.json"))
    v.wait_for(lambda: len(temp_files(res)) == 1)
    assert v.signal(signal.SIGINT)
    rc, text = v.finish()
    assert rc == 130, text
    assert (
        f"interrupted: 0 of {RUNS} run(s) finished (records written atomically), {RUNS} not finished; "
        f"nothing partial was written."
    ) in text
    assert "Traceback" not in text and temp_files(res) == [] and valid_records(res) == {}
    KILL_STATS["sigint"] = 2
    restart_and_check(res, cache, ref)


def _spec():
    from albench.engine.protocol import RunSpec

    return RunSpec(
        "random", "coop", "digits", seed=1, rounds=2, adapter_options={"epochs": 2, "min_steps": 0}
    )  # = GRID


@pytest.mark.parametrize("fail_at", ["write", "rename"])
@pytest.mark.slow
def test_failed_write_leaves_no_partial_record_and_names_the_path(warm, tmp_path, monkeypatch, fail_at):
    import albench.api.atomic as atomic
    from albench.engine.protocol import Workspace, execute

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if fail_at == "rename":
        monkeypatch.setattr(atomic.os, "replace", enospc)
    else:
        monkeypatch.setattr(atomic.os, "fsync", enospc)
    ws = Workspace(warm["cache"], device="cpu", progress=False)
    with pytest.raises(AlbenchError) as err:
        execute(_spec(), tmp_path, ws)
    run_id = next(k for k in warm["ref"] if k.startswith("random__coop__seed1__"))
    path = tmp_path / "digits" / f"{run_id}.json"
    assert str(err.value) == f"Writing {path} failed: No space left on device; no partial record was left."
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == []  # no record, no temp file
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").rglob("*.json")) == []
    monkeypatch.undo()
    out = execute(_spec(), tmp_path, ws)  # the disk has room again: the run is done normally
    assert out.path == path and read_record(path) is not None


@pytest.mark.slow
def test_truncated_or_corrupt_record_is_reported_and_rebuilt(warm, tmp_path):
    cache, ref = warm["cache"], warm["ref"]
    res = tmp_path / "r"
    shutil.copytree(warm["base"] / "ref", res)
    victim = res / "digits" / (next(k for k in ref if k.startswith("random__coop__seed2__")) + ".json")
    good = victim.read_bytes()
    for damage in (good[: len(good) // 2], b"", b'{"schema": 1}', good.replace(b'"schema": 1', b'"schema": 99')):
        victim.write_bytes(damage)
        assert read_record(victim) is None  # never read as data
        t = cli("table", "--results-dir", res)
        assert t.exit_code == 0
        assert (
            f"warning: {victim} is not a valid run record (truncated, corrupt, or with a non-finite accuracy); "
            f"ignored. Running its grid again rebuilds it."
        ) in t.stderr
        assert "| digits | coop | 1 |" in t.stdout
        out = cli("run", *GRID, "--cache-dir", cache, "--results-dir", res)
        assert out.exit_code == 0 and "1 run(s) done, 3 skipped, 0 failed" in out.output, out.output
        assert strip_timing(json.loads(victim.read_text())) == strip_timing(ref[victim.stem])


@pytest.mark.parametrize("damage", ["truncate", "flip-data-byte", "empty", "garbage", "other-key"])
def test_corrupt_cache_file_is_detected_and_rebuilt(tmp_path, damage):
    cache = FeatureCache(tmp_path)
    t = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    cache.save("k", t)
    p = cache.path("k")
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[: len(raw) - 20])
    elif damage == "flip-data-byte":
        p.write_bytes(raw[:-5] + bytes([raw[-5] ^ 0xFF]) + raw[-4:])
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "garbage":
        p.write_bytes(b"\x00" * len(raw))
    else:  # a valid file for another key under this key's name
        cache.save("other", t)
        shutil.copy(cache.path("other"), p)
    assert cache.load("k") is None and not p.exists()  # detected and removed, never returned
    calls = []
    out = cache.get_or_compute("k", lambda: calls.append(1) or t * 1)
    assert torch.equal(out, t) and calls == [1]
    assert torch.equal(cache.load("k"), t)  # rebuilt file is valid
    assert list(tmp_path.rglob("*.tmp")) == []
