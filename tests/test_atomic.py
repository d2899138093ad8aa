"""The one atomic writer: old or new file, never a partial one; killed `albench table` / `albench report`."""

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import albench.api.atomic as atomic
from albench.api.atomic import AtomicWriteError, atomic_write, remove_stale_temps, stale_temps
from albench.cli.main import main

from helpers import BASE, DATASET_SHIFT, SEED_OFF, make_record, slow_write_env


def test_writes_bytes_text_and_callables_with_ordinary_permissions(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    assert atomic_write(p, b"\x00\x01") == p and p.read_bytes() == b"\x00\x01"
    atomic_write(p, "é\n")
    assert p.read_bytes() == "é\n".encode()
    atomic_write(p, lambda f: f.write(b"abc"))
    assert p.read_bytes() == b"abc"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    atomic_write(p, b"x", mode=0o600)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.bin"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "t.txt"
    p.write_text("old")

    def boom(f):
        f.write(b"half")
        raise ValueError("render failed")

    with pytest.raises(ValueError, match="render failed"):
        atomic_write(p, boom)
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["t.txt"]

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", enospc)
    with pytest.raises(AtomicWriteError) as err:
        atomic_write(p, "new")
    assert str(err.value) == f"Writing {p} failed: No space left on device; the old file (if any) is unchanged."
    assert err.value.stage == "write"
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["t.txt"]


def test_unwritable_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AtomicWriteError) as err:
        atomic_write(blocker / "x.txt", "y")
    assert err.value.stage == "open" and str(err.value).startswith(f"Cannot write to {blocker}: ")


def test_stale_temps_are_found_per_target_and_removed(tmp_path):
    target = tmp_path / "a[1].json"  # glob metacharacters in the name are taken literally
    mine = tmp_path / ".a[1].json.xyz.tmp"
    other = tmp_path / ".b.json.xyz.tmp"
    mine.write_text("partial")
    other.write_text("partial")
    assert stale_temps(target) == [mine]
    assert remove_stale_temps(target) == 1 and not mine.exists() and other.exists()


# --- killing the real commands mid-write ------------------------------------------------------------------


def _records(root: Path, bump: float) -> None:
    for d, shift in list(DATASET_SHIFT.items())[:2]:
        for (s, a), base in BASE.items():
            for seed, off in SEED_OFF.items():
                make_record(root, d, s, a, seed, [base + r + off + shift + bump for r in range(1, 7)])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _kill_mid_write(args: list[str], target: str) -> None:
    """Run ``albench ARGS`` in a subprocess; SIGKILL it while ``target``'s temp file exists, unrenamed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **slow_write_env(120, target))
    proc = subprocess.Popen(
        [sys.executable, "-m", "albench.cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Path(args[args.index("--out") + 1])
    end = time.monotonic() + 300
    try:
        while not list(out.rglob(f".{target}.*.tmp")):
            assert proc.poll() is None, f"finished before writing {target}: {proc.stderr.read()}"
            assert time.monotonic() < end, "timed out waiting for the write"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("target", ["table1_toy.tex", "table1_toy_extras.csv"])
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_killed_table_leaves_old_or_new_files_never_partial(tmp_path, target):
    res, out, fresh = tmp_path / "results", tmp_path / "out", tmp_path / "fresh"
    _records(res, 0.0)
    args = ["table", "--preset", "table1", "--suite", "toy", "--results-dir", str(res)]
    assert CliRunner().invoke(main, [*args, "--out", str(out)]).exit_code == 0
    old = _snapshot(out)
    _records(res, 3.0)  # new numbers: every file of the next table differs
    assert CliRunner().invoke(main, [*args, "--out", str(fresh)]).exit_code == 0
    new = _snapshot(fresh)
    assert set(old) == set(new) and all(old[k] != new[k] for k in old)
    _kill_mid_write([*args, "--out", str(out)], target)
    after = {k: v for k, v in _snapshot(out).items() if not k.startswith(".")}
    assert set(after) == set(old)
    assert after[target] == old[target]  # killed before its rename: the old file, whole
    for name, data in after.items():
        assert data in (old[name], new[name]), f"{name} is neither the old nor the new file"
    assert len(list(out.glob(f".{target}.*.tmp"))) == 1  # the only trace: one hidden temp file


@pytest.mark.parametrize("target", ["index.html", "aubc.png"])
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_killed_report_leaves_old_or_new_files_never_partial(tmp_path, target):
    res, out = tmp_path / "results", tmp_path / "out"
    _records(res, 0.0)
    args = ["report", "--results-dir", str(res), "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    old = _snapshot(out)
    _records(res, 3.0)
    _kill_mid_write(args, target)
    after = {k: v for k, v in _snapshot(out).items() if not Path(k).name.startswith(".")}
    assert set(after) == set(old)
    key = next(k for k in old if Path(k).name == target)
    assert after[key] == old[key]
    for name, data in after.items():
        assert len(data) > 0
        if name.endswith(".png"):
            assert data.startswith(b"\x89PNG") and data.rstrip().endswith(b"IEND\xaeB`\x82")  # whole images
