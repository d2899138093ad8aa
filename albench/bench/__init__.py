"""``albench bench``: measured figures written to ``reports/bench.json`` and ``reports/bench.md``.

Each section is a function ``run(quick: bool) -> dict`` returning
``{"title": str, "rows": [dict, ...], "notes": str}`` (rows become a Markdown
table). Sections live in their own modules and are registered under the
entry-point group ``albench.bench`` in pyproject.toml (``SECTIONS``, the same
registry mechanism as strategies, adapters and datasets; a section's module is
imported only when it runs); ``albench bench --section NAME`` runs a subset. Compare ratios measured in one
run rather than absolute seconds: shared machines are noisy.

Each section records the git commit it was measured at and whether the tree
was dirty (sections of one ``bench.json`` may come from different runs), its
CPU and wall seconds and the machine's load average before and after. A
section may return ``"ratios"`` (name -> float); ``--stability`` runs each
section twice in a row and records, per ratio, whether the two runs agree
within +-15 % (``albench.bench.timing.compare_runs``). How individual figures
are timed: ``albench.bench.timing``.
"""

from __future__ import annotations

import importlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from albench.api.registry import Registry

SECTIONS: Registry = Registry("bench section", "albench.bench", None)


def register_section(name: str, section: Callable[..., dict] | str) -> None:
    """Register a section in-process: a ``run(quick) -> dict`` function or its "module:function" path."""
    if isinstance(section, str):
        mod, fn = section.split(":")
        section = getattr(importlib.import_module(mod), fn)
    SECTIONS.register(name, section)


def machine() -> dict:
    import os

    import torch

    from albench.engine.environment import environment

    return {
        **environment(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def git_state(outputs: tuple[Path, ...] = (), where: Path | None = None) -> dict:
    """The commit checked out now and whether tracked files differ from it (not cached: sections differ).

    ``outputs``: files the benchmark itself writes (``bench.json``, ``bench.md``); a change to them is not a
    change to the code measured, so it does not make the tree dirty (otherwise every section after the first
    of a run would be flagged by the previous section's own output). ``where``: a folder of the repository
    (default: albench's own).
    """
    import subprocess

    here = where or Path(__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True, timeout=10
        )
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "dirty": None}
    if sha.returncode != 0 or top.returncode != 0:
        return {"git_sha": None, "dirty": None}
    root = Path(top.stdout.strip()).resolve()
    ignored = {p.resolve() for p in outputs}
    changed = [root / line[3:].split(" -> ")[-1] for line in dirty.stdout.splitlines() if line.strip()]
    return {"git_sha": sha.stdout.strip(), "dirty": any(p.resolve() not in ignored for p in changed)}


def _run_one(name: str, quick: bool, outputs: tuple[Path, ...] = ()) -> dict:
    from albench.bench.timing import load_average, timed

    run = SECTIONS.get(name)
    state, load0 = git_state(outputs), load_average()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with timed() as sw:
        section = run(quick=quick)
    section.update(state)
    section.update(
        {
            "wall_seconds": round(sw.sample.wall_s, 2),
            "cpu_seconds": round(sw.sample.cpu_s, 2),
            "measured_at": started,
            "load_average": [load0, load_average()],
        }
    )
    return section


def rows_to_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run_sections(names: list[str] | None, quick: bool, out_dir: Path, stability: bool = False) -> dict:
    from albench.api.errors import UnknownNameError
    from albench.bench.timing import compare_runs

    names = names or SECTIONS.names()
    for n in names:
        if n not in SECTIONS:
            raise UnknownNameError("bench section", n, SECTIONS.names())
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "bench.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    result = {"machine": machine(), "quick": quick, "sections": dict(previous.get("sections", {}))}
    from albench.api.atomic import atomic_write
    from albench.engine.records import atomic_write_json

    def save() -> None:  # after every run, so a long benchmark interrupted later keeps what it measured
        atomic_write_json(json_path, result)
        atomic_write(out_dir / "bench.md", render_markdown(result))

    for n in names:
        section = _run_one(n, quick, (json_path, out_dir / "bench.md"))
        if stability:
            result["sections"][n] = section
            save()
            second = _run_one(n, quick, (json_path, out_dir / "bench.md"))
            second["stability"] = {
                "first_run": {
                    k: section.get(k)
                    for k in ("measured_at", "git_sha", "dirty", "cpu_seconds", "wall_seconds", "load_average")
                },
                "rows": compare_runs(section.get("ratios", {}), second.get("ratios", {})),
            }
            section = second
        result["sections"][n] = section
        save()
    return result


def render_markdown(result: dict) -> str:
    m = result["machine"]
    md = [
        "# albench bench\n",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, torch {m['torch']}, "
        f"CUDA: {m['cuda'] or 'none'}; albench {m['albench']}; last run {m['date']}. Each section names the "
        f"commit it was measured at.\n",
    ]
    for n, sec in result["sections"].items():
        md.append(f"## {n}: {sec.get('title', '')}\n")
        sha = sec.get("git_sha") or "unknown commit"
        tree = {True: ", dirty tree", False: ", clean tree"}.get(sec.get("dirty"), "")
        load = sec.get("load_average")
        cpu = f", {sec['cpu_seconds']} s CPU" if "cpu_seconds" in sec else " (CPU time not recorded)"
        md.append(
            f"Measured {sec.get('measured_at', '?')} at {sha}{tree} in {sec.get('wall_seconds', '?')} s wall"
            + cpu
            + (f"; load average {load[0]} -> {load[1]}" if load else "")
            + ".\n"
        )
        md.append(rows_to_markdown(sec.get("rows", [])) + "\n")
        if sec.get("notes"):
            md.append(sec["notes"] + "\n")
        if sec.get("stability"):
            st = sec["stability"]
            ok = all(r["within"] for r in st["rows"])
            md.append(
                f"Stability: {st.get('how', 'two consecutive runs')} (other run at "
                f"{st['first_run'].get('measured_at')}, "
                f"{st['first_run'].get('wall_seconds')} s wall); every ratio within ±15 %: "
                f"{'yes' if ok else 'NO'}.\n"
            )
            md.append(rows_to_markdown(st["rows"]) + "\n")
    return "\n".join(md)
