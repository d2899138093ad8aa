"""Workers die with their parent: SIGKILL the parent of a --workers 2 grid; no albench process is left, and a
rerun finishes the grid with the same records as an uninterrupted run."""

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from helpers import GRID, RUNS, Victim, cli, valid_records


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries ``tag`` (the victim and everything it started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"ALBENCH_TEST_TAG={tag}".encode() in env.split(b"\0") and state != "Z":
            pids.append(int(d.name))
    return pids


# long runs (each far longer than the grace period below), so a worker that merely finishes its current run
# before noticing the dead parent is caught as a leak
LONG = [*GRID, "--rounds", "1", "--adapter-opt", "coop:epochs=1000", "--workers", "2"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.timeout(900)
def test_killing_the_parent_of_a_two_worker_grid_leaves_no_process(warm, tmp_path):
    res = tmp_path / "r"
    tag = uuid.uuid4().hex
    v = Victim([*LONG, "--cache-dir", warm["cache"], "--results-dir", res], {"ALBENCH_TEST_TAG": tag})
    # wait until both workers exist (the parent and at least two spawned children carry the tag) and work
    v.wait_for(lambda: len([p for p in _tagged(tag) if p != v.proc.pid]) >= 2, timeout=300)
    time.sleep(3)
    assert v.signal(signal.SIGKILL)
    v.finish()
    deadline = time.monotonic() + 5
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _tagged(tag)
    for pid in left:  # do not leak into the rest of the suite even when the assertion fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes left 5 s after the parent was killed: {left}"
    assert valid_records(res) == {}  # killed inside its first runs
    out = cli("run", *LONG, "--cache-dir", warm["cache"], "--results-dir", res)  # the rerun finishes the grid
    assert out.exit_code == 0, out.output
    assert f"{RUNS} run(s) done, 0 skipped, 0 failed" in out.output
    assert len(valid_records(res)) == RUNS


def test_die_with_parent_exits_when_reparented():
    """The heartbeat alone (no parent-death signal needed): a grandchild whose parent exits kills itself."""
    import subprocess
    import sys

    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import os, time\\n"
        "from albench.engine.launchers import die_with_parent\\n"
        "die_with_parent(os.getppid(), interval=0.1)\\n"
        "time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(1.5)\n"
    )  # let the child start its watcher, then exit without waiting for it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    alive = Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive
